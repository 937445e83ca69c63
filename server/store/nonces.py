"""Spent nonces: single use enforced by the database, so it holds across processes and
replicas; spending one and writing its audit record is one transaction.

Challenges are stateless (``server.nonces`` issues MAC'd nonces and writes nothing), so the
only nonce write of an attestation cycle is the spend: one ``INSERT ... ON CONFLICT DO
NOTHING RETURNING`` on the nonce's primary key, which exactly one caller wins. Spends go
through one writer thread (``groupcommit``): whatever queued during the previous commit is
committed together, so a process takes the database's write lock once per batch instead of
once per request, and each caller returns only after the transaction holding its own write
is durable.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import delete as sql_delete

from server.audit.chain import serialize_data
from server.store import AuditEvent, AuditRecord, NonceOutcome
from server.store.auditlog import AuditLogStore
from server.store.groupcommit import GroupCommitter, Pending
from server.store.schema import nonces

# ON CONFLICT DO NOTHING on both databases, so a PostgreSQL transaction holding other spends
# of the same batch is never aborted by a replay
_SPEND = (
    "INSERT INTO nonces (nonce, binding, expires_at, consumed_at) VALUES (%s, %s, %s, %s)"
    " ON CONFLICT (nonce) DO NOTHING RETURNING nonce"
)


@dataclass
class _Spend:
    """One spend request; the writer fills in ``outcome`` and ``record``."""

    nonce: str
    binding: str
    expires_at: int
    now: int
    audit: AuditEvent | None
    data: str | None
    outcome: NonceOutcome = NonceOutcome.ALREADY_USED
    record: AuditRecord | None = None


class NonceStore(AuditLogStore):
    """Spend and purge nonces."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._group_committer: GroupCommitter[_Spend] | None = None
        self._committer_lock = threading.Lock()

    def spend_nonce(
        self, nonce: str, *, binding: str, expires_at: int, now: int, audit: AuditEvent | None
    ) -> tuple[NonceOutcome, AuditRecord | None]:
        """Record a checked nonce as spent, with ``audit`` in the same durable commit: exactly
        one caller ever gets CONSUMED, the others ALREADY_USED."""
        data = serialize_data(audit.data) if audit is not None else None
        done = self._committer().submit(_Spend(nonce, binding, expires_at, now, audit, data))
        return done.request.outcome, done.request.record

    async def spend_nonce_async(
        self, nonce: str, *, binding: str, expires_at: int, now: int, audit: AuditEvent | None
    ) -> tuple[NonceOutcome, AuditRecord | None]:
        """``spend_nonce`` awaited on the event loop: no thread waits for the commit."""
        data = serialize_data(audit.data) if audit is not None else None
        done = await self._committer().submit_async(
            _Spend(nonce, binding, expires_at, now, audit, data)
        )
        return done.request.outcome, done.request.record

    def _committer(self) -> GroupCommitter[_Spend]:
        with self._committer_lock:
            if self._group_committer is None:
                self._group_committer = GroupCommitter(self._commit_batch)
            return self._group_committer

    def close(self) -> None:
        """Stop the writer (if started) and release the database connections."""
        with self._committer_lock:
            committer, self._group_committer = self._group_committer, None
        if committer is not None:
            committer.close()
        self.engine.dispose()

    def _commit_batch(self, batch: list[Pending[_Spend]]) -> None:
        head: tuple[int, str] | None = None
        with self._tx() as conn:
            for pending in batch:
                spend = pending.request
                spend.outcome, spend.record = self._spend_one(conn, spend, head)
                if spend.record is not None:
                    head = (spend.record.seq, spend.record.hash)
        for pending in batch:
            if pending.request.record is not None:
                self._committed(pending.request.record)

    def _spend_one(
        self, conn: Connection, spend: _Spend, head: tuple[int, str] | None
    ) -> tuple[NonceOutcome, AuditRecord | None]:
        """(1) one insert on the primary key spends the nonce, or finds it spent; (2) its
        record is appended in the same transaction."""
        inserted = (
            self.driver(conn)
            .execute(self.sql(_SPEND), (spend.nonce, spend.binding, spend.expires_at, spend.now))
            .fetchone()
        )
        if inserted is None:
            return NonceOutcome.ALREADY_USED, None
        if spend.audit is None:
            return NonceOutcome.CONSUMED, None
        return NonceOutcome.CONSUMED, self._append(conn, spend.audit, head=head, data=spend.data)

    def purge_nonces(self, *, before: int) -> int:
        """Delete spent nonces that expired before ``before``: they can never be presented."""
        with self._tx() as conn:
            result = conn.execute(sql_delete(nonces).where(nonces.c.expires_at < before))
            return result.rowcount
