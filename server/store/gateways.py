"""Credentials relying parties (gateways) use to call introspection, the secret by hash."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select

from server.store import AuditEvent
from server.store.auditlog import AuditLogStore
from server.store.schema import gateway_credentials


@dataclass(frozen=True)
class GatewayCredentialRecord:
    """A relying party's credential for introspection (the secret by hash only)."""

    credential_id: str
    name: str
    secret_sha256: str
    created_at: int
    revoked_at: int | None = None


class GatewayCredentialStore(AuditLogStore):
    """Create and look up gateway credentials."""

    def add_gateway_credential(
        self, credential: GatewayCredentialRecord, audit: AuditEvent
    ) -> None:
        """Store a credential (secret by hash) and its audit record together."""
        with self._tx() as conn:
            conn.execute(
                insert(gateway_credentials).values(
                    credential_id=credential.credential_id,
                    name=credential.name,
                    secret_sha256=credential.secret_sha256,
                    created_at=credential.created_at,
                )
            )
            record = self._append(conn, audit)
        self._committed(record)

    def get_gateway_credential(self, credential_id: str) -> GatewayCredentialRecord | None:
        """The credential, or None."""
        g = gateway_credentials.c
        with self._read() as conn:
            row = conn.execute(
                select(gateway_credentials).where(g.credential_id == credential_id)
            ).first()
        if row is None:
            return None
        return GatewayCredentialRecord(
            row.credential_id, row.name, row.secret_sha256, row.created_at, row.revoked_at
        )
