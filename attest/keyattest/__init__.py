"""Key-attestation verification at enrollment, dispatched on the statement's ``format``.

One module per format (``none``, ``tpm2``), same keyword-only signature style; an unknown or
missing format is an error, never a fallthrough to ``none`` (STYLE 4). This is the only
dispatch: the verifier calls ``verify_key_attestation`` and branches on the verified result.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum

from attest.errors import KeyAttestationError
from attest.keyattest.none import VerifiedNoneKey, build_none_statement, verify_none
from attest.keyattest.tpm2 import (
    ActivationChallenge,
    VerifiedTpm2Key,
    activation_secret_sha256,
    make_activation_challenge,
    verify_activation_secret,
    verify_tpm2_key_attestation,
)
from attest.keyattest.tpm2_statement import build_tpm2_statement
from attest.keys import KeyClass
from attest.tpm.ekcert import TrustStore, load_trust_store


class AttestationFormat(StrEnum):
    """Values of ``key_attestation.format`` on the wire."""

    NONE = "none"
    TPM2 = "tpm2"


VerifiedKeyAttestation = VerifiedNoneKey | VerifiedTpm2Key


def attestation_format(statement: Mapping[str, object]) -> AttestationFormat:
    """The statement's format, or KeyAttestationError if missing or unknown."""
    value = statement.get("format")
    if isinstance(value, str) and value in AttestationFormat.__members__.values():
        return AttestationFormat(value)
    known = ", ".join(f.value for f in AttestationFormat)
    raise KeyAttestationError(
        f"key_attestation format {value!r} is not supported; expected one of: {known}"
    )


def verify_key_attestation(
    statement: Mapping[str, object],
    *,
    expected_jwk: Mapping[str, str],
    expected_nonce: bytes,
    trust_store: TrustStore | None,
    now: datetime,
    claimed_class: KeyClass = KeyClass.SOFTWARE,
) -> VerifiedKeyAttestation:
    """Dispatch on ``format``. ``trust_store=None`` means this server cannot accept ``tpm2``."""
    fmt = attestation_format(statement)
    if fmt is AttestationFormat.NONE:
        return verify_none(
            statement,
            expected_jwk=expected_jwk,
            expected_nonce=expected_nonce,
            claimed_class=claimed_class,
        )
    if trust_store is None:
        raise KeyAttestationError(
            "this verifier does not accept TPM enrollment (no EK trust store configured); "
            "enroll with --key software or ask the administrator to set --tpm-roots"
        )
    return verify_tpm2_key_attestation(
        statement,
        expected_jwk=expected_jwk,
        expected_nonce=expected_nonce,
        trust_store=trust_store,
        now=now,
    )


__all__ = [
    "ActivationChallenge",
    "AttestationFormat",
    "TrustStore",
    "VerifiedKeyAttestation",
    "VerifiedNoneKey",
    "VerifiedTpm2Key",
    "activation_secret_sha256",
    "attestation_format",
    "build_none_statement",
    "build_tpm2_statement",
    "load_trust_store",
    "make_activation_challenge",
    "verify_activation_secret",
    "verify_key_attestation",
    "verify_none",
    "verify_tpm2_key_attestation",
]
