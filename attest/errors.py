"""Errors raised by the shared library.

AttestError
├── FormatError              untrusted bytes are not well-formed evidence / JWK / manifest
├── VerificationError        well-formed input that fails a check
│   ├── SignatureError       the signature does not verify with the expected key
│   ├── AlgorithmError       anything but ES256 (``none``, HMAC, RSA, ...)
│   └── KeyAttestationError  a key-attestation proof does not hold
└── KeyProviderError         a key provider cannot create, load or use its key
"""

from __future__ import annotations


class AttestError(Exception):
    """Base class of every error this package raises."""


class FormatError(AttestError):
    """Input is not well-formed (bad base64, JSON, types, sizes)."""


class VerificationError(AttestError):
    """Well-formed input failed a verification step."""


class SignatureError(VerificationError):
    """The signature does not verify with the expected key."""


class AlgorithmError(VerificationError):
    """The JWS names an algorithm other than ES256."""


class KeyAttestationError(VerificationError):
    """A key-attestation proof (for example TPM2_Certify) does not hold."""


class KeyProviderError(AttestError):
    """A key provider cannot create, load or use its key; the message says what to do."""
