"""Compact JWS with exactly one algorithm, ES256 (RFC 7515, RFC 7518 section 3.4).

Evidence is signed by key providers that may live in hardware and only expose
``sign(data) -> r||s``, so signing takes a callable rather than a key object. Verification
accepts ES256 and nothing else: ``none``, HMAC and RSA are refused before any key is used,
which closes the algorithm-confusion attacks (RFC 8725 section 2.1).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from attest.b64 import b64url_decode, b64url_encode
from attest.errors import AlgorithmError, FormatError, SignatureError
from attest.strictjson import parse_json_object

ES256 = "ES256"
_COORD_LEN = 32
_ALLOWED_HEADER = frozenset({"alg", "typ", "kid"})

ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())  # immutable; built once, not per signature
Signer = Callable[[bytes], bytes]
"""Signs bytes with ES256, returning the 64-byte raw ``r||s`` signature."""


@dataclass(frozen=True)
class CompactJws:
    """An untrusted compact JWS: parsed header and payload, plus the exact signed bytes."""

    header: Mapping[str, Any]
    payload: bytes
    signing_input: bytes
    signature: bytes


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    return parse_json_object(raw, what=what)


def canonical_json(value: object) -> bytes:
    """Compact, key-sorted UTF-8 JSON: the one serialization the project signs and hashes."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def sign_compact(header: Mapping[str, Any], payload: bytes, signer: Signer) -> str:
    """Serialize and sign; the header must say ES256."""
    if header.get("alg") != ES256:
        raise AlgorithmError("only ES256 is supported")
    return sign_encoded(b64url_encode(canonical_json(dict(header))), payload, signer)


def sign_encoded(encoded_header: str, payload: bytes, signer: Signer) -> str:
    """``sign_compact`` with a header already checked and encoded (one signer, many tokens)."""
    signing_input = encoded_header + "." + b64url_encode(payload)
    signature = signer(signing_input.encode("ascii"))
    if len(signature) != 2 * _COORD_LEN:
        raise SignatureError("an ES256 signature is 64 bytes (r||s)")
    return signing_input + "." + b64url_encode(signature)


_MEMO_HEADER_CHARS = 512  # a P-256 JWK header is about 250; longer ones are not kept


def _decode_header(segment: str) -> Mapping[str, Any]:
    return MappingProxyType(_json_object(b64url_decode(segment), "JWS header"))


_memo_header = functools.lru_cache(maxsize=1024)(_decode_header)
"""A pure function of the text, memoized: one signer sends the same header with every proof
or evidence. Errors are not cached, so a malformed header raises every time."""


def _header(segment: str) -> Mapping[str, Any]:
    """A header segment decoded, read-only."""
    return _memo_header(segment) if len(segment) <= _MEMO_HEADER_CHARS else _decode_header(segment)


def parse_compact(token: str) -> CompactJws:
    """Split and decode without verifying; raises FormatError on anything malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        raise FormatError("a compact JWS has three dot-separated parts")
    header = _header(parts[0])
    payload = b64url_decode(parts[1])
    return CompactJws(
        header=header,
        payload=payload,
        signing_input=(parts[0] + "." + parts[1]).encode("ascii"),
        signature=b64url_decode(parts[2]),
    )


def check_es256_header(header: Mapping[str, Any], *, expected_typ: str) -> str:
    """Refuse any algorithm but ES256, unknown or critical members; return ``kid``."""
    if header.get("alg") != ES256:
        raise AlgorithmError(f"algorithm {header.get('alg')!r} is not accepted; only ES256")
    extra = set(header) - _ALLOWED_HEADER
    if extra:
        raise FormatError(f"unsupported JWS header members: {', '.join(sorted(extra))}")
    if header.get("typ") != expected_typ:
        raise FormatError(f"JWS typ must be {expected_typ!r}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise FormatError("JWS header needs a string kid")
    return kid


def verify_es256(jws: CompactJws, *, expected_key: ec.EllipticCurvePublicKey) -> None:
    """Verify the raw ``r||s`` signature over the exact signed bytes, or raise SignatureError."""
    if jws.header.get("alg") != ES256:
        raise AlgorithmError("only ES256 is accepted")
    if len(jws.signature) != 2 * _COORD_LEN:
        raise SignatureError("ES256 signature must be 64 bytes")
    r = int.from_bytes(jws.signature[:_COORD_LEN], "big")
    s = int.from_bytes(jws.signature[_COORD_LEN:], "big")
    try:
        expected_key.verify(encode_dss_signature(r, s), jws.signing_input, ECDSA_SHA256)
    except InvalidSignature as exc:
        raise SignatureError("signature does not verify with the enrolled key") from exc


def der_to_raw(der_signature: bytes) -> bytes:
    """Convert a DER ECDSA signature to the 64-byte JWS form."""
    r, s = decode_dss_signature(der_signature)
    return r.to_bytes(_COORD_LEN, "big") + s.to_bytes(_COORD_LEN, "big")
