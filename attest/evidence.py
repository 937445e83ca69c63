"""Evidence: an EAT (RFC 9711) carried as a compact JWS, ``typ: eat+jwt``, ES256.

Claims: ``eat_nonce``, ``iat``, ``sub`` (device id), ``eat_profile``, ``swname``,
``swversion``, ``consent`` ``{manifest_sha256, granted_at, fields}`` and ``signals``
(catalog field id -> value). ``parse_evidence`` turns untrusted bytes into typed claims and
keeps the exact signed bytes; ``verify_evidence_signature`` checks them against a key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NewType

from cryptography.hazmat.primitives.asymmetric import ec

from attest import EAT_PROFILE, SWNAME, __version__
from attest.catalog import FieldId, field_by_id
from attest.errors import FormatError
from attest.jose import (
    CompactJws,
    Signer,
    canonical_json,
    check_es256_header,
    parse_compact,
    sign_compact,
)
from attest.jose import verify_es256 as _verify_es256
from attest.strictjson import parse_json_object

DeviceId = NewType("DeviceId", str)

EVIDENCE_TYP = "eat+jwt"
MAX_EVIDENCE_BYTES = 64 * 1024
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_CLAIMS = frozenset(
    {"eat_nonce", "iat", "sub", "eat_profile", "swname", "swversion", "consent", "signals"}
)


@dataclass(frozen=True)
class ConsentClaim:
    """What the user agreed to: the exact manifest, when, and which of its fields."""

    manifest_sha256: str
    granted_at: int
    fields: tuple[FieldId, ...]

    def to_json(self) -> dict[str, Any]:
        """Wire form."""
        return {
            "manifest_sha256": self.manifest_sha256,
            "granted_at": self.granted_at,
            "fields": list(self.fields),
        }


@dataclass(frozen=True)
class EvidenceClaims:
    """Typed claims of a piece of evidence."""

    nonce: str
    iat: int
    sub: DeviceId
    profile: str
    swname: str
    swversion: str
    consent: ConsentClaim
    signals: Mapping[FieldId, object]

    def to_json(self) -> dict[str, Any]:
        """Wire form, EAT claim names."""
        return {
            "eat_nonce": self.nonce,
            "iat": self.iat,
            "sub": self.sub,
            "eat_profile": self.profile,
            "swname": self.swname,
            "swversion": self.swversion,
            "consent": self.consent.to_json(),
            "signals": dict(self.signals),
        }


@dataclass(frozen=True)
class UntrustedEvidence:
    """Parsed, not yet verified: the device id to look up and the exact signed bytes."""

    kid: DeviceId
    claims: EvidenceClaims
    jws: CompactJws


@dataclass(frozen=True)
class VerifiedEvidence:
    """Evidence whose signature verified with the expected key."""

    kid: DeviceId
    claims: EvidenceClaims


def new_claims(
    *,
    nonce: str,
    device_id: str,
    consent: ConsentClaim,
    signals: Mapping[str, object],
    now: int,
) -> EvidenceClaims:
    """Claims for the agent to sign; every signal must be a catalog field."""
    for field_id in signals:
        field_by_id(field_id)
    return EvidenceClaims(
        nonce=nonce,
        iat=now,
        sub=DeviceId(device_id),
        profile=EAT_PROFILE,
        swname=SWNAME,
        swversion=__version__,
        consent=consent,
        signals={FieldId(k): v for k, v in signals.items()},
    )


def sign_evidence(claims: EvidenceClaims, signer: Signer) -> str:
    """Serialize and sign claims; exactly one call to ``signer``."""
    header = {"alg": "ES256", "typ": EVIDENCE_TYP, "kid": claims.sub}
    return sign_compact(header, canonical_json(claims.to_json()), signer)


def _string(doc: Mapping[str, Any], name: str, limit: int = 256) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise FormatError(f"claim {name} must be a non-empty string")
    return value


def _integer(doc: Mapping[str, Any], name: str) -> int:
    value = doc.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**42:
        raise FormatError(f"claim {name} must be a non-negative integer")
    return value


def _consent(value: object) -> ConsentClaim:
    if not isinstance(value, dict):
        raise FormatError("claim consent must be an object")
    sha = _string(value, "manifest_sha256")
    if not _SHA256_HEX.fullmatch(sha):
        raise FormatError("consent.manifest_sha256 must be 64 lowercase hex digits")
    fields = value.get("fields")
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise FormatError("consent.fields must be a list of field ids")
    return ConsentClaim(
        manifest_sha256=sha,
        granted_at=_integer(value, "granted_at"),
        fields=tuple(FieldId(f) for f in fields),
    )


def _claims(payload: bytes) -> EvidenceClaims:
    doc = parse_json_object(payload, what="evidence payload")
    unknown = set(doc) - _CLAIMS
    if unknown:
        raise FormatError(f"unknown claims: {', '.join(sorted(unknown))}")
    signals = doc.get("signals")
    if not isinstance(signals, dict):
        raise FormatError("claim signals must be an object")
    return EvidenceClaims(
        nonce=_string(doc, "eat_nonce", 128),
        iat=_integer(doc, "iat"),
        sub=DeviceId(_string(doc, "sub")),
        profile=_string(doc, "eat_profile"),
        swname=_string(doc, "swname"),
        swversion=_string(doc, "swversion"),
        consent=_consent(doc.get("consent")),
        signals={FieldId(k): v for k, v in signals.items()},
    )


def parse_evidence(token: bytes) -> UntrustedEvidence:
    """Parse untrusted evidence bytes; raises FormatError or AlgorithmError."""
    if len(token) > MAX_EVIDENCE_BYTES:
        raise FormatError("evidence is larger than 64 KiB")
    try:
        text = token.decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise FormatError("evidence must be an ASCII compact JWS") from exc
    jws = parse_compact(text)
    kid = check_es256_header(jws.header, expected_typ=EVIDENCE_TYP)
    claims = _claims(jws.payload)
    if claims.sub != kid:
        raise FormatError("JWS kid and sub name different devices")
    if claims.profile != EAT_PROFILE:
        raise FormatError(f"eat_profile must be {EAT_PROFILE}")
    return UntrustedEvidence(kid=DeviceId(kid), claims=claims, jws=jws)


def verify_evidence_signature(
    evidence: UntrustedEvidence, *, expected_key: ec.EllipticCurvePublicKey
) -> VerifiedEvidence:
    """Verify the signature with the enrolled key; raises SignatureError."""
    _verify_es256(evidence.jws, expected_key=expected_key)
    return VerifiedEvidence(kid=evidence.kid, claims=evidence.claims)
