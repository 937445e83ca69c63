"""Key providers: one P-256 signing key per device, ES256 only.

A provider never reveals its private key. The verifier, not the provider, decides the key class
from the proof in ``attestation()``; ``claimed_class`` is only what the provider believes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol


class KeyClass(StrEnum):
    """What the verifier could prove about where a key lives."""

    TPM2 = "tpm2"
    HARDWARE_UNVERIFIED = "hardware-unverified"
    SOFTWARE = "software"


class ProviderName(StrEnum):
    """Key providers the agent knows; ``auto`` is resolved by the agent, never sent."""

    TPM2 = "tpm2"
    WINDOWS_PCP = "windows-pcp"
    SECURE_ENCLAVE = "secure-enclave"
    SOFTWARE = "software"


class KeyProvider(Protocol):
    """The interface every key provider implements."""

    name: ProviderName
    claimed_class: KeyClass

    def public_jwk(self) -> dict[str, str]:
        """The public key as a P-256 JWK."""
        ...

    def sign(self, data: bytes) -> bytes:
        """ES256 over ``data``: SHA-256 then ECDSA, returned as 64 raw bytes ``r||s``."""
        ...

    def attestation(self, nonce: bytes) -> dict[str, Any]:
        """The ``key_attestation`` object for enrollment over the verifier's challenge ``nonce``
        (format ``none``: the key signs it; ``tpm2``: TPM2_Certify carries it)."""
        ...


__all__ = ["KeyClass", "KeyProvider", "ProviderName"]
