"""Check envattest access tokens in a gateway's own code (LiteLLM, scripts, HAProxy keys).

Offline verification against the verifier's JWKS, revocation and DPoP binding through the
verifier, and the identity it decided (docs/gateways.md).
"""

from envattest_gateway.checker import Identity, TokenChecker
from envattest_gateway.errors import (
    BindingError,
    DeniedError,
    GatewayError,
    InactiveTokenError,
    InvalidTokenError,
    MissingTokenError,
    VerifierUnavailableError,
)

__all__ = [
    "BindingError",
    "DeniedError",
    "GatewayError",
    "Identity",
    "InactiveTokenError",
    "InvalidTokenError",
    "MissingTokenError",
    "TokenChecker",
    "VerifierUnavailableError",
]
