"""Unpadded base64url (RFC 7515 section 2), strict on decode."""

from __future__ import annotations

import base64
import binascii
import re

from attest.errors import FormatError

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


def b64url_encode(data: bytes) -> str:
    """Encode without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url; anything else (padding, '+', whitespace) is a FormatError."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise FormatError("not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise FormatError("not unpadded base64url") from exc
