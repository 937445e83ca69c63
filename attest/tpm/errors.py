"""Errors of the TPM 2.0 verifier library.

KeyAttestationError (attest.errors)
├── TpmStructureError    a TPM wire structure or statement member is malformed
├── EkCertificateError   the EK certificate does not chain to the trust store or names another key
├── TpmAttributeError    an AK, EK or signing key lacks a required attribute, scheme or curve
├── CertifyInfoError     TPMS_ATTEST has the wrong magic, type, qualifying data or name
├── TpmSignatureError    the certify signature does not verify with the AK
├── KeyMismatchError     the enrolled JWK is not the certified TPM key
└── ActivationError      the activation secret does not match

TrustStoreError (AttestError): the verifier's EK trust store cannot be loaded (server config).
"""

from __future__ import annotations

from attest.errors import AttestError, KeyAttestationError


class TpmStructureError(KeyAttestationError):
    """A TPM structure (TPMT_PUBLIC, TPMS_ATTEST, TPMT_SIGNATURE) or statement is malformed."""


class EkCertificateError(KeyAttestationError):
    """The EK certificate is untrusted, expired, or certifies a different key."""


class TpmAttributeError(KeyAttestationError):
    """A TPM object lacks a required attribute, or uses an unsupported scheme or curve."""


class CertifyInfoError(KeyAttestationError):
    """The certify information is not a fresh TPM2_Certify of the submitted key."""


class TpmSignatureError(KeyAttestationError):
    """The certify signature does not verify with the attestation key."""


class KeyMismatchError(KeyAttestationError):
    """The key being enrolled is not the key the TPM certified."""


class ActivationError(KeyAttestationError):
    """The secret returned by credential activation is not the one the verifier issued."""


class TrustStoreError(AttestError):
    """The EK trust store directory is missing, unreadable, empty or holds a non-certificate."""


__all__ = [
    "ActivationError",
    "CertifyInfoError",
    "EkCertificateError",
    "KeyMismatchError",
    "TpmAttributeError",
    "TpmSignatureError",
    "TpmStructureError",
    "TrustStoreError",
]
