"""One check per request: token offline, then revocation and binding at the verifier.

checker = TokenChecker.for_verifier("https://verifier.example", credential="gw_...")
identity = await checker.check(authorization=..., api_key=..., dpop=..., method=..., url=...)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from envattest_gateway.errors import (
    BindingError,
    MissingTokenError,
)
from envattest_gateway.introspection import IntrospectionClient
from envattest_gateway.jwks import JwksCache
from envattest_gateway.offline import verify_offline

MISSING = (
    "no envattest access token: run 'envattest token' (or let your tool's credential helper "
    "do it) and send it as Authorization: Bearer or X-Api-Key"
)
NO_EXTERNAL_URL = (
    "this gateway cannot check DPoP proofs: its administrator must set its external URL "
    "(ENVATTEST_EXTERNAL_URL for LiteLLM) to the URL clients use for it"
)
BOUND_AS_BEARER = (
    "this access token is bound to the device key (DPoP) and was sent without its proof: "
    "send requests through 'envattest proxy' (or 'envattest exec --via-proxy')"
)


@dataclass(frozen=True)
class Identity:
    """Who a request comes from, as the verifier decided it."""

    device_id: str
    key_class: str
    policy_version: str
    token_id: str
    expires_at: int


@dataclass(frozen=True)
class PresentedToken:
    """The token and how it was sent (``Bearer``, ``DPoP`` or ``X-Api-Key``)."""

    token: str
    scheme: str


def presented_token(authorization: str | None, api_key: str | None) -> PresentedToken:
    """The token from ``Authorization`` (Bearer or DPoP) or ``X-Api-Key``."""
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() in ("bearer", "dpop") and value.strip():
            return PresentedToken(value.strip(), "DPoP" if scheme.lower() == "dpop" else "Bearer")
    if api_key and api_key.strip():
        return PresentedToken(api_key.strip(), "X-Api-Key")
    raise MissingTokenError(MISSING)


class TokenChecker:
    """Offline signature and claims, then introspection (revocation) and DPoP binding."""

    def __init__(
        self,
        *,
        jwks: JwksCache,
        introspection: IntrospectionClient,
        issuer: str,
        audience: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._jwks = jwks
        self._introspection = introspection
        self._issuer = issuer
        self._audience = audience
        self._clock = clock

    @classmethod
    def for_verifier(
        cls,
        base_url: str,
        *,
        credential: str,
        issuer: str | None = None,
        audience: str | None = None,
        cache_s: float = 5.0,
        http: httpx.AsyncClient | None = None,
    ) -> TokenChecker:
        """A checker for the verifier at ``base_url`` (its issuer defaults to that URL)."""
        client = http or httpx.AsyncClient()
        base = base_url.rstrip("/")
        return cls(
            jwks=JwksCache(f"{base}/.well-known/jwks.json", http=client),
            introspection=IntrospectionClient(
                f"{base}/v1/introspect", credential, http=client, ttl_s=cache_s
            ),
            issuer=issuer or base,
            audience=audience,
        )

    async def check(
        self,
        *,
        authorization: str | None,
        api_key: str | None,
        dpop: str | None = None,
        method: str = "",
        url: str = "",
    ) -> Identity:
        """The identity behind the request, or raise DeniedError / VerifierUnavailableError."""
        # (1) the token, and how it was sent (DESIGN: forward auth)
        presented = presented_token(authorization, api_key)
        # (2) ES256 by a published key, iss, aud, exp, offline (DESIGN: relying party)
        verified = await verify_offline(
            presented.token,
            jwks=self._jwks,
            issuer=self._issuer,
            audience=self._audience,
            now=self._clock(),
        )
        # (3) a DPoP-bound token (signed claim `binding`) only with its proof (RFC 9449 7.1)
        bound = verified.claims.get("binding") == "dpop"
        if bound and (presented.scheme != "DPoP" or not dpop):
            raise BindingError(BOUND_AS_BEARER, detail=f"DPoP-bound token as {presented.scheme}")
        # (4) still active at the verifier (revocation; for DPoP also the proof, checked by
        #     the verifier for this request): within the cache time for bearer tokens
        if presented.scheme == "DPoP" and dpop:
            if not url:  # the gateway was not told its own URL: htu cannot be checked
                raise BindingError(NO_EXTERNAL_URL, detail="no external URL configured")
            answer = await self._introspection.active_with_proof(
                presented.token, proof=dpop, method=method, url=url
            )
        else:
            answer = await self._introspection.active(presented.token)
        claims = verified.claims
        return Identity(
            device_id=verified.device_id,
            key_class=str(answer.get("key_class") or claims.get("key_class", "")),
            policy_version=str(claims.get("policy_version") or ""),
            token_id=str(claims["jti"]),
            expires_at=int(claims["exp"]),
        )


__all__ = ["BOUND_AS_BEARER", "MISSING", "Identity", "PresentedToken", "TokenChecker"]
