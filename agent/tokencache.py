"""The fast path of ``envattest token``: a still-valid cached token, with only stdlib imports.

This module must not import cryptography, httpx, psutil or anything from ``attest``: it runs
on every request a coding tool makes.

Before a cached token is served, the verifier is asked whether it is still good
(``GET /v1/token/status``, read-only, one round trip with the standard library), so a device
revoked at the verifier learns it at its next ``token`` call. A verifier that cannot be reached
does not block the tool: the cached token is served and the gateway still enforces revocation.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

MIN_REMAINING_S = 60
STATUS_TIMEOUT_S = 2.0
INACTIVE_FILE = "device-inactive.json"


def _read_object(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def cached_token(token_path: Path, *, now: float | None = None) -> str | None:
    """The cached token if it has more than a minute left, else None."""
    doc = _read_object(token_path)
    if doc is None:
        return None
    token, expires_at = doc.get("access_token"), doc.get("expires_at")
    if not isinstance(token, str) or not isinstance(expires_at, int | float):
        return None
    current = time.time() if now is None else now
    return token if expires_at - current > MIN_REMAINING_S else None


def inactive_notice(root: Path) -> str | None:
    """What the verifier said when it stopped accepting this device, if it did."""
    doc = _read_object(root / INACTIVE_FILE)
    if doc is None:
        return None
    return str(doc.get("detail") or "the verifier no longer accepts this device")


@dataclass(frozen=True)
class TokenStatus:
    """The verifier's view of a cached token."""

    state: Literal["active", "device-inactive", "refresh", "unknown"]
    detail: str = ""


def verifier_token_status(root: Path, token: str) -> TokenStatus:
    """Ask the enrolled verifier about ``token``; ``unknown`` when it cannot say."""
    enrollment = _read_object(root / "agent.json")
    server = enrollment.get("server") if enrollment else None
    if not isinstance(server, str) or not server.startswith(("https://", "http://")):
        return TokenStatus("unknown")
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        server.rstrip("/") + "/v1/token/status",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    try:
        context = _tls_context(enrollment) if server.startswith("https://") else None
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=STATUS_TIMEOUT_S, context=context
        ) as response:
            doc = json.loads(response.read(65536))
    except (OSError, ValueError, urllib.error.URLError):
        return TokenStatus("unknown")
    if not isinstance(doc, dict) or doc.get("active") is True:
        return TokenStatus("active")
    if doc.get("state") == "device-inactive":
        return TokenStatus("device-inactive", str(doc.get("detail", "")))
    return TokenStatus("refresh")


def _tls_context(enrollment: dict[str, Any] | None) -> Any:
    import ssl

    try:
        import truststore

        context: ssl.SSLContext = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    except ImportError:  # pragma: no cover - truststore is a dependency
        context = ssl.create_default_context()
    ca_file = enrollment.get("ca_file") if enrollment else None
    if isinstance(ca_file, str) and ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context
