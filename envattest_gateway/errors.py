"""Errors of the relying-party library.

GatewayError
├── DeniedError                 refuse the request (401); ``reason`` says what to do
│   ├── MissingTokenError       no token in Authorization or X-Api-Key
│   ├── InvalidTokenError       forged, malformed, wrong alg/iss/aud, expired
│   ├── InactiveTokenError      the verifier says not active (revoked, erased device)
│   └── BindingError            a DPoP-bound token without its proof
└── VerifierUnavailableError    JWKS or introspection unreachable (503, fail closed)
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error here."""


class DeniedError(GatewayError):
    """The request must be refused; ``reason`` is safe to show the client."""

    status = 401

    def __init__(self, reason: str, *, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or reason


class MissingTokenError(DeniedError):
    """No envattest token in the request."""


class InvalidTokenError(DeniedError):
    """The token does not verify offline."""


class InactiveTokenError(DeniedError):
    """The verifier answers that the token is not active."""


class BindingError(DeniedError):
    """A DPoP-bound token presented without a valid proof."""


class VerifierUnavailableError(GatewayError):
    """The verifier could not be asked; the request is refused (fail closed)."""

    status = 503


__all__ = [
    "BindingError",
    "DeniedError",
    "GatewayError",
    "InactiveTokenError",
    "InvalidTokenError",
    "MissingTokenError",
    "VerifierUnavailableError",
]
