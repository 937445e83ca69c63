"""Schemathesis hooks (SCHEMATHESIS_HOOKS): the compact-JWS bodies are plain strings."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.serializer("application/eat+jwt", "application/envattest-request+jwt")
def compact_jws(_ctx: Any, value: Any) -> bytes:
    """Send a generated string as the body bytes."""
    return value.encode() if isinstance(value, str) else str(value).encode()
