"""P-256 public JWKs (RFC 7517/7518) and their RFC 7638 thumbprints."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric import ec

from attest.b64 import b64url_decode, b64url_encode
from attest.errors import FormatError

_COORD_LEN = 32


def public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The public JWK of a P-256 key, members in RFC 7638 order."""
    if not isinstance(key.curve, ec.SECP256R1):
        raise FormatError("only P-256 keys are supported")
    numbers = key.public_numbers()
    return {
        "crv": "P-256",
        "kty": "EC",
        "x": b64url_encode(numbers.x.to_bytes(_COORD_LEN, "big")),
        "y": b64url_encode(numbers.y.to_bytes(_COORD_LEN, "big")),
    }


def load_public_jwk(jwk: object) -> ec.EllipticCurvePublicKey:
    """Parse an untrusted JWK; only public EC P-256 keys, no private members."""
    if not isinstance(jwk, Mapping):
        raise FormatError("public_jwk must be a JSON object")
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise FormatError("public_jwk must be an EC P-256 key (kty EC, crv P-256)")
    if "d" in jwk:
        raise FormatError("public_jwk contains a private key member 'd'; send the public key only")
    x, y = jwk.get("x"), jwk.get("y")
    if not isinstance(x, str) or not isinstance(y, str):
        raise FormatError("public_jwk needs string members x and y")
    xb, yb = b64url_decode(x), b64url_decode(y)
    if len(xb) != _COORD_LEN or len(yb) != _COORD_LEN:
        raise FormatError("public_jwk coordinates must be 32 bytes each")
    try:
        return ec.EllipticCurvePublicNumbers(
            int.from_bytes(xb, "big"), int.from_bytes(yb, "big"), ec.SECP256R1()
        ).public_key()
    except ValueError as exc:
        raise FormatError("public_jwk is not a point on P-256") from exc


def jwk_thumbprint(key: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 SHA-256 thumbprint, base64url."""
    canonical = json.dumps(public_jwk(key), separators=(",", ":"), sort_keys=True)
    return b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())
