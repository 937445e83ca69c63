"""Device-authenticated requests (``whoami``, ``forget``): a JWS signed by the device key.

Claims: ``sub`` (device id), ``eat_nonce`` (from /v1/challenge, single use), ``iat`` and
``action``. Same rules as evidence: ES256 only, the exact signed bytes, one signature.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

from attest.errors import FormatError
from attest.jose import CompactJws, Signer, check_es256_header, parse_compact, sign_compact
from attest.strictjson import parse_json_object

REQUEST_TYP = "envattest-request+jwt"
MAX_REQUEST_BYTES = 8 * 1024


class DeviceAction(StrEnum):
    """What a device asks of the verifier."""

    WHOAMI = "whoami"
    FORGET = "forget"


@dataclass(frozen=True)
class DeviceRequest:
    """A parsed, unverified device request."""

    device_id: str
    nonce: str
    iat: int
    action: DeviceAction
    jws: CompactJws


def sign_device_request(
    *, device_id: str, nonce: str, iat: int, action: DeviceAction, signer: Signer
) -> str:
    """Build and sign a request."""
    payload = {"sub": device_id, "eat_nonce": nonce, "iat": iat, "action": action.value}
    return sign_compact(
        {"alg": "ES256", "typ": REQUEST_TYP, "kid": device_id},
        json.dumps(payload, separators=(",", ":")).encode(),
        signer,
    )


def parse_device_request(body: bytes) -> DeviceRequest:
    """Parse untrusted bytes; raises FormatError or AlgorithmError."""
    if len(body) > MAX_REQUEST_BYTES:
        raise FormatError("device request is larger than 8 KiB")
    try:
        jws = parse_compact(body.decode("ascii").strip())
    except UnicodeDecodeError as exc:
        raise FormatError("device request must be an ASCII compact JWS") from exc
    kid = check_es256_header(jws.header, expected_typ=REQUEST_TYP)
    doc = parse_json_object(jws.payload, what="device request payload")
    if set(doc) != {"sub", "eat_nonce", "iat", "action"}:
        raise FormatError("device request needs exactly sub, eat_nonce, iat, action")
    sub, nonce, iat = doc["sub"], doc["eat_nonce"], doc["iat"]
    if (
        sub != kid
        or not isinstance(nonce, str)
        or isinstance(iat, bool)
        or not isinstance(iat, int)
    ):
        raise FormatError("device request claims are malformed")
    try:
        action = DeviceAction(doc["action"])
    except ValueError:
        raise FormatError("unknown device request action") from None
    return DeviceRequest(device_id=kid, nonce=nonce, iat=iat, action=action, jws=jws)
