"""The ``tpm2`` key-attestation statement: its JSON wire form, built and parsed in one place.

Wire form (every binary member is unpadded base64url of the exact TPM/DER bytes)::

    {
      "format": "tpm2",
      "ek_cert": DER X.509 EK certificate (from TPM NV 0x01c00002 / 0x01c0000a / 0x01c00016),
      "ek_chain": [DER intermediate CA certificates, issuer of ek_cert first]   (optional),
      "ek_public": TPMT_PUBLIC of the endorsement key,
      "ak_public": TPMT_PUBLIC of the attestation key (restricted signing key),
      "key_public": TPMT_PUBLIC of the P-256 signing key being enrolled,
      "certify_info": TPMS_ATTEST returned by TPM2_Certify(key, AK, qualifyingData=nonce)
                      (the body of the TPM2B_ATTEST, without its size prefix),
      "certify_signature": TPMT_SIGNATURE over certify_info by the AK
    }

Public areas are TPMT_PUBLIC (not TPM2B_PUBLIC) because the TPM name is the hash of exactly
those bytes. Unknown members are refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from attest.b64 import b64url_decode, b64url_encode
from attest.errors import FormatError
from attest.tpm.attestation import CertifyInfo, TpmSignature, parse_certify_info, parse_signature
from attest.tpm.ekcert import parse_certificate
from attest.tpm.errors import TpmStructureError
from attest.tpm.public import TpmPublic, parse_tpmt_public

FORMAT_TPM2 = "tpm2"
_REQUIRED = (
    "ek_cert",
    "ek_public",
    "ak_public",
    "key_public",
    "certify_info",
    "certify_signature",
)
_OPTIONAL = ("ek_chain",)
_MAX_CHAIN = 5


@dataclass(frozen=True)
class Tpm2Statement:
    """A parsed, not yet verified, ``tpm2`` statement; every ``raw`` keeps the sent bytes."""

    ek_cert: x509.Certificate
    ek_chain: tuple[x509.Certificate, ...]
    ek_public: TpmPublic
    ak_public: TpmPublic
    key_public: TpmPublic
    certify_info: CertifyInfo
    certify_signature: TpmSignature


def build_tpm2_statement(
    *,
    ek_cert: bytes,
    ek_public: bytes,
    ak_public: bytes,
    key_public: bytes,
    certify_info: bytes,
    certify_signature: bytes,
    ek_chain: Sequence[bytes] = (),
) -> dict[str, Any]:
    """The wire dict from raw TPM/DER bytes (agent side and vector generator)."""
    statement: dict[str, Any] = {
        "format": FORMAT_TPM2,
        "ek_cert": b64url_encode(ek_cert),
        "ek_public": b64url_encode(ek_public),
        "ak_public": b64url_encode(ak_public),
        "key_public": b64url_encode(key_public),
        "certify_info": b64url_encode(certify_info),
        "certify_signature": b64url_encode(certify_signature),
    }
    if ek_chain:
        statement["ek_chain"] = [b64url_encode(c) for c in ek_chain]
    return statement


def _member_bytes(statement: Mapping[str, object], member: str) -> bytes:
    value = statement.get(member)
    if not isinstance(value, str) or not value:
        raise TpmStructureError(f"tpm2 statement member {member!r} must be a base64url string")
    try:
        return b64url_decode(value)
    except FormatError:
        raise TpmStructureError(
            f"tpm2 statement member {member!r} is not unpadded base64url"
        ) from None


def _chain(statement: Mapping[str, object]) -> tuple[x509.Certificate, ...]:
    value = statement.get("ek_chain", [])
    if not isinstance(value, list) or len(value) > _MAX_CHAIN:
        raise TpmStructureError(
            f"tpm2 statement member 'ek_chain' must be a list of at most {_MAX_CHAIN} strings"
        )
    certs = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise TpmStructureError("tpm2 statement 'ek_chain' entries must be base64url strings")
        try:
            der = b64url_decode(item)
        except FormatError:
            raise TpmStructureError(f"ek_chain[{index}] is not unpadded base64url") from None
        certs.append(parse_certificate(der, f"ek_chain[{index}]"))
    return tuple(certs)


def parse_tpm2_statement(statement: Mapping[str, object]) -> Tpm2Statement:
    """Parse an untrusted statement into typed TPM structures, or raise TpmStructureError."""
    if statement.get("format") != FORMAT_TPM2:
        raise TpmStructureError("not a tpm2 statement (format must be 'tpm2')")
    unknown = set(statement) - {"format", *_REQUIRED, *_OPTIONAL}
    if unknown:
        raise TpmStructureError(f"tpm2 statement has unknown members: {', '.join(sorted(unknown))}")
    return Tpm2Statement(
        ek_cert=parse_certificate(_member_bytes(statement, "ek_cert"), "ek_cert"),
        ek_chain=_chain(statement),
        ek_public=parse_tpmt_public(_member_bytes(statement, "ek_public")),
        ak_public=parse_tpmt_public(_member_bytes(statement, "ak_public")),
        key_public=parse_tpmt_public(_member_bytes(statement, "key_public")),
        certify_info=parse_certify_info(_member_bytes(statement, "certify_info")),
        certify_signature=parse_signature(_member_bytes(statement, "certify_signature")),
    )
