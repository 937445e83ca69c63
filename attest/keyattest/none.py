"""``none`` key attestation: no proof; the key class is whatever can be honestly self-reported."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from attest.errors import KeyAttestationError
from attest.jwk import load_public_jwk, public_jwk
from attest.keys import KeyClass

FORMAT_NONE = "none"
_SELF_REPORTABLE = frozenset({KeyClass.SOFTWARE, KeyClass.HARDWARE_UNVERIFIED})


@dataclass(frozen=True)
class VerifiedNoneKey:
    """A key enrolled without proof: ``software`` or self-reported ``hardware-unverified``."""

    public_jwk: dict[str, str]
    key_class: KeyClass


def verify_none(
    statement: Mapping[str, object],
    *,
    expected_jwk: Mapping[str, str],
    claimed_class: KeyClass = KeyClass.SOFTWARE,
) -> VerifiedNoneKey:
    """Accept ``{"format": "none"}``; ``claimed_class`` may only be a self-reportable class.

    ``tpm2`` can never be claimed without proof; a malformed JWK raises ``FormatError``.
    """
    if dict(statement) != {"format": FORMAT_NONE}:
        raise KeyAttestationError('a "none" key attestation is exactly {"format": "none"}')
    if claimed_class not in _SELF_REPORTABLE:
        raise KeyAttestationError(
            f"key class {claimed_class.value!r} needs a proof; a 'none' attestation can only "
            "enroll 'software' or 'hardware-unverified' keys"
        )
    return VerifiedNoneKey(
        public_jwk=public_jwk(load_public_jwk(expected_jwk)), key_class=claimed_class
    )
