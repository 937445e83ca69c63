"""The fast path of ``envattest token``: a still-valid cached token, with only stdlib imports.

This module must not import cryptography, httpx, psutil or anything from ``attest``: it runs
on every request a coding tool makes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

MIN_REMAINING_S = 60


def cached_token(token_path: Path, *, now: float | None = None) -> str | None:
    """The cached token if it has more than a minute left, else None."""
    try:
        doc = json.loads(token_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict):
        return None
    token, expires_at = doc.get("access_token"), doc.get("expires_at")
    if not isinstance(token, str) or not isinstance(expires_at, int | float):
        return None
    current = time.time() if now is None else now
    return token if expires_at - current > MIN_REMAINING_S else None
