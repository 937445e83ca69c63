"""Access-token checks for relying parties: introspection (RFC 7662) and forward auth.

Unlike a gateway checking the JWT offline with the JWKS, these look the device up on every
call, so a revoked or erased device is refused at once (DESIGN: relying party).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from server.errors import UnauthorizedError
from server.store import DeviceRecord
from server.store.sql import SqlStore
from server.tokens import TokenIssuer

BEARER_CHALLENGE = 'Bearer realm="envattest", error="invalid_token"'
_INVALID = (
    "no valid envattest access token: run 'envattest token' (or let your tool's credential "
    "helper do it) and send it as Authorization: Bearer or X-Api-Key"
)
MAX_TOKEN_CHARS = 4096


class InactiveTokenError(UnauthorizedError):
    """The token is not active: missing, malformed, forged, expired, or its device revoked."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            _INVALID, audit_detail=reason, headers={"WWW-Authenticate": BEARER_CHALLENGE}
        )
        self.reason = reason


@dataclass(frozen=True)
class ActiveToken:
    """A token that verified, with the device it names (active right now)."""

    claims: dict[str, Any]
    device: DeviceRecord

    def introspection(self) -> dict[str, Any]:
        """The RFC 7662 answer for an active token."""
        c = self.claims
        answer = {"active": True, "token_type": "Bearer"}
        for name in ("sub", "exp", "iat", "nbf", "aud", "iss", "jti", "cnf"):
            if name in c:
                answer[name] = c[name]
        answer["key_class"] = self.device.key_class
        answer["policy_version"] = c.get("policy_version")
        return answer


def check_access_token(
    token: str, *, issuer: TokenIssuer, store: SqlStore, audience: str | None = None
) -> ActiveToken:
    """Verify a token this verifier issued and that its device is still active."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise InactiveTokenError("missing or oversized token")
    # (1) ES256 signature by a published key (unknown kid, alg none, HMAC: refused),
    #     exp / iat / iss, and aud when the caller names one (DESIGN: access token)
    try:
        claims = issuer.verify(token, audience=audience)
    except (jwt.PyJWTError, ValueError) as exc:
        raise InactiveTokenError(f"token: {exc.__class__.__name__}: {exc}") from exc
    # (2) the device exists and is neither revoked nor erased, now (revocation at once)
    device = store.get_device(str(claims.get("sub", "")))
    if device is None or not device.active:
        raise InactiveTokenError("device unknown, revoked or erased")
    # (3) the token is bound to the device key it was issued for (cnf.jkt)
    cnf = claims.get("cnf")
    if not isinstance(cnf, dict) or cnf.get("jkt") != device.jkt:
        raise InactiveTokenError("cnf.jkt does not match the enrolled device key")
    return ActiveToken(claims, device)


def bearer_token(authorization: str | None, api_key: str | None) -> str:
    """The token from ``Authorization: Bearer`` or ``X-Api-Key`` (Claude Code sends both)."""
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return (api_key or "").strip()
