"""Nonces: single use enforced by the database (one conditional UPDATE), so it holds across
processes and replicas; spending one and writing its audit record is one transaction."""

from __future__ import annotations

from sqlalchemy import delete as sql_delete
from sqlalchemy import insert, select
from sqlalchemy import update as sql_update

from server.store import AuditEvent, AuditRecord, NonceOutcome
from server.store.auditlog import AuditLogStore
from server.store.schema import nonces


class NonceStore(AuditLogStore):
    """Issue, spend and purge nonces."""

    def add_nonce(self, nonce: str, *, binding: str, expires_at: int) -> None:
        """Store a fresh nonce (relaxed durability: losing an unused nonce only means the
        agent asks again)."""
        with self._tx_relaxed() as conn:
            conn.execute(insert(nonces).values(nonce=nonce, binding=binding, expires_at=expires_at))

    def consume_nonce(self, nonce: str, *, binding: str, now: int) -> NonceOutcome:
        """Spend with one conditional UPDATE; on failure, look up why (for the audit log)."""
        outcome, _ = self.settle_attestation(nonce, binding=binding, now=now, audit=None)
        return outcome

    def settle_attestation(
        self, nonce: str, *, binding: str, now: int, audit: AuditEvent | None
    ) -> tuple[NonceOutcome, AuditRecord | None]:
        """Spend the nonce and append its audit record in one durable transaction: exactly
        one caller ever gets CONSUMED, and every spent nonce has its record."""
        n = nonces.c
        record = None
        with self._tx() as conn:
            result = conn.execute(
                sql_update(nonces)
                .where(
                    n.nonce == nonce,
                    n.binding == binding,
                    n.consumed_at.is_(None),
                    n.expires_at > now,
                )
                .values(consumed_at=now)
            )
            if result.rowcount == 1:
                if audit is not None:
                    record = self._append(conn, audit)
                row = None
            else:
                row = conn.execute(select(nonces).where(n.nonce == nonce)).first()
                if row is None:
                    return NonceOutcome.UNKNOWN, None
        if row is None:
            return NonceOutcome.CONSUMED, None if record is None else self._committed(record)
        if row.binding != binding:
            return NonceOutcome.WRONG_DEVICE, None
        if row.consumed_at is not None:
            return NonceOutcome.ALREADY_USED, None
        return NonceOutcome.EXPIRED, None

    def purge_nonces(self, *, before: int) -> int:
        """Delete nonces expired before ``before``; spent ones can go too, as their
        expiry already makes them unusable."""
        with self._tx() as conn:
            result = conn.execute(sql_delete(nonces).where(nonces.c.expires_at < before))
            return result.rowcount
