"""Offline access-token verification against the verifier's JWKS (DESIGN: relying party).

What this cannot see is revocation: a revoked device's token verifies until ``exp``. The
checker pairs it with introspection for that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from envattest_gateway.errors import InvalidTokenError
from envattest_gateway.jwks import JwksCache

MAX_TOKEN_CHARS = 4096
_FRESH = "run 'envattest token' for a fresh one (your tool's credential helper does this)"


@dataclass(frozen=True)
class VerifiedToken:
    """Claims of a token that verified offline."""

    claims: dict[str, Any]

    @property
    def device_id(self) -> str:
        """The device the token was issued to (``sub``)."""
        return str(self.claims["sub"])


async def verify_offline(
    token: str, *, jwks: JwksCache, issuer: str, audience: str | None, now: float
) -> VerifiedToken:
    """Verify an access token's signature and claims; raise InvalidTokenError otherwise."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise InvalidTokenError(f"the envattest access token is malformed: {_FRESH}")
    # (1) only ES256: `none` and HMAC are refused before any key is looked up (RFC 8725 3.1)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidTokenError(f"the envattest access token is malformed: {_FRESH}") from exc
    if header.get("alg") != "ES256":
        raise InvalidTokenError(
            f"the access token is not signed with ES256: {_FRESH}",
            detail=f"alg {header.get('alg')}",
        )
    # (2) a key the verifier publishes, refetching the JWKS once for an unknown kid
    key = await jwks.key(str(header.get("kid", "")))
    if key is None:
        raise InvalidTokenError(
            f"the access token is not signed by this verifier: {_FRESH}", detail="unknown kid"
        )
    # (3) signature, iss and aud by PyJWT; time claims against the injected clock below
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["ES256"],
            issuer=issuer,
            audience=audience,
            options={
                "require": ["exp", "iat", "sub", "iss", "jti"],
                "verify_aud": audience is not None,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise InvalidTokenError(
            f"the access token does not verify: {_FRESH}", detail=f"{type(exc).__name__}: {exc}"
        ) from exc
    # (4) exp and nbf (RFC 7519 4.1.4, 4.1.5)
    if not isinstance(claims["exp"], int) or claims["exp"] <= now:
        raise InvalidTokenError(f"the envattest access token has expired: {_FRESH}")
    if isinstance(claims.get("nbf"), int) and claims["nbf"] > now + 60:
        raise InvalidTokenError(f"the access token is not valid yet (check this clock): {_FRESH}")
    return VerifiedToken(claims)


__all__ = ["MAX_TOKEN_CHARS", "VerifiedToken", "verify_offline"]
