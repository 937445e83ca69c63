"""Gateway credentials: how a relying party authenticates to ``POST /v1/introspect``.

A credential is ``gw_<id>.<secret>``, shown once by ``envattest-server gateway-credential
create`` and stored as the SHA-256 of the secret. It is presented as HTTP Basic (user = id,
password = secret) or as ``Authorization: Bearer gw_<id>.<secret>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import select, update

from server.errors import UnauthorizedError
from server.store.schema import gateway_credentials
from server.store.sql import GatewayCredentialRecord, SqlStore

CREDENTIAL_PREFIX = "gw_"
CHALLENGE = 'Basic realm="envattest", Bearer realm="envattest"'
_UNAUTHORIZED = (
    "a gateway credential is required: send HTTP Basic (id, secret) or Bearer gw_<id>.<secret> "
    "from 'envattest-server gateway-credential create'"
)


@dataclass(frozen=True)
class NewCredential:
    """A freshly made credential: ``presented`` is shown once, ``record`` is stored."""

    presented: str
    record: GatewayCredentialRecord


def secret_sha256(secret: str) -> str:
    """Secrets are stored and compared by hash only."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_gateway_credential(name: str, *, now: int) -> NewCredential:
    """A random id and secret."""
    credential_id = CREDENTIAL_PREFIX + secrets.token_urlsafe(9)
    secret = secrets.token_urlsafe(32)
    record = GatewayCredentialRecord(credential_id, name, secret_sha256(secret), now)
    return NewCredential(f"{credential_id}.{secret}", record)


def _parse_authorization(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        credential_id, sep, secret = decoded.partition(":")
    elif scheme.lower() == "bearer":
        credential_id, sep, secret = value.partition(".")
    else:
        return None
    return (credential_id, secret) if sep and credential_id and secret else None


CredentialLookup = Callable[[str], Awaitable[GatewayCredentialRecord | None]]


async def authenticate_gateway(
    lookup: CredentialLookup, authorization: str | None
) -> GatewayCredentialRecord:
    """The credential named by an Authorization header, or UnauthorizedError (401).
    ``lookup`` is the row cache, so a revoked credential is refused at once."""

    def refuse(why: str) -> UnauthorizedError:
        return UnauthorizedError(
            _UNAUTHORIZED, audit_detail=why, headers={"WWW-Authenticate": CHALLENGE}
        )

    parsed = _parse_authorization(authorization or "")
    if parsed is None:
        raise refuse("missing or malformed gateway credential")
    credential_id, secret = parsed
    record = await lookup(credential_id) if len(credential_id) <= 64 else None
    # compare even for unknown ids, so timing does not tell which ids exist
    expected = record.secret_sha256 if record is not None else "0" * 64
    if not hmac.compare_digest(expected, secret_sha256(secret)) or record is None:
        raise refuse("unknown gateway credential or wrong secret")
    if record.revoked_at is not None:
        raise refuse("revoked gateway credential")
    return record


def list_gateway_credentials(store: SqlStore) -> list[GatewayCredentialRecord]:
    """Every credential, oldest first (secrets are stored by hash only)."""
    g = gateway_credentials.c
    with store.engine.connect() as conn:
        rows = conn.execute(select(gateway_credentials).order_by(g.created_at, g.credential_id))
        return [
            GatewayCredentialRecord(
                r.credential_id, r.name, r.secret_sha256, r.created_at, r.revoked_at
            )
            for r in rows
        ]


def revoke_gateway_credential(store: SqlStore, credential_id: str, *, now: int) -> bool:
    """Mark a credential revoked; False if unknown or already revoked. Takes effect at once
    on every replica (the revocation epoch moves with the row)."""
    g = gateway_credentials.c
    with store.engine.begin() as conn:
        result = conn.execute(
            update(gateway_credentials)
            .where(g.credential_id == credential_id, g.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return result.rowcount == 1
