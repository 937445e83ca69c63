"""Nonces: single use enforced by the database (one conditional UPDATE), so it holds across
processes and replicas; spending one and writing its audit record is one transaction.

Both writes of an attestation cycle, the new nonce and the settle, go through one writer
thread (``groupcommit``): whatever queued during the previous commit is committed together,
so a process takes the database's write lock once per batch instead of once per request,
and each caller returns only after the transaction holding its own write is durable.
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

_ADD = "INSERT INTO nonces (nonce, binding, expires_at) VALUES (%s, %s, %s)"
_SPEND = (
    "UPDATE nonces SET consumed_at = %s WHERE nonce = %s AND binding = %s"
    " AND consumed_at IS NULL AND expires_at > %s"
)
_WHY = "SELECT binding, consumed_at FROM nonces WHERE nonce = %s"


@dataclass
class _NewNonce:
    """A nonce to store."""

    nonce: str
    binding: str
    expires_at: int


@dataclass
class _Settle:
    """One settle request; the writer fills in ``outcome`` and ``record``."""

    nonce: str
    binding: str
    now: int
    audit: AuditEvent | None
    data: str | None
    outcome: NonceOutcome = NonceOutcome.UNKNOWN
    record: AuditRecord | None = None


_Write = _NewNonce | _Settle


class NonceStore(AuditLogStore):
    """Issue, spend and purge nonces."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._group_committer: GroupCommitter[_Write] | None = None
        self._committer_lock = threading.Lock()

    def add_nonce(self, nonce: str, *, binding: str, expires_at: int) -> None:
        """Store a fresh nonce (committed with the writer's next batch)."""
        self._committer().submit(_NewNonce(nonce, binding, expires_at))

    def consume_nonce(self, nonce: str, *, binding: str, now: int) -> NonceOutcome:
        """Spend with one conditional UPDATE; on failure, look up why (for the audit log)."""
        outcome, _ = self.settle_attestation(nonce, binding=binding, now=now, audit=None)
        return outcome

    def settle_attestation(
        self, nonce: str, *, binding: str, now: int, audit: AuditEvent | None
    ) -> tuple[NonceOutcome, AuditRecord | None]:
        """Spend the nonce and append its audit record in one durable transaction: exactly
        one caller ever gets CONSUMED, and every spent nonce has its record."""
        data = serialize_data(audit.data) if audit is not None else None
        done = self._committer().submit(_Settle(nonce, binding, now, audit, data))
        settle = done.request
        assert isinstance(settle, _Settle)
        return settle.outcome, settle.record

    def _committer(self) -> GroupCommitter[_Write]:
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

    def _commit_batch(self, batch: list[Pending[_Write]]) -> None:
        head: tuple[int, str] | None = None
        with self._tx() as conn:
            db = self.driver(conn)
            for pending in batch:
                write = pending.request
                if isinstance(write, _NewNonce):
                    db.execute(self.sql(_ADD), (write.nonce, write.binding, write.expires_at))
                    continue
                write.outcome, write.record = self._settle_one(conn, write, head)
                if write.record is not None:
                    head = (write.record.seq, write.record.hash)
        for pending in batch:
            record = getattr(pending.request, "record", None)
            if record is not None:
                self._committed(record)

    def _settle_one(
        self, conn: Connection, settle: _Settle, head: tuple[int, str] | None
    ) -> tuple[NonceOutcome, AuditRecord | None]:
        """(1) one conditional UPDATE spends the nonce; (2) its record is appended in the same
        transaction; otherwise (3) look up why it could not be spent (for the audit log)."""
        db = self.driver(conn)
        spent = db.execute(
            self.sql(_SPEND), (settle.now, settle.nonce, settle.binding, settle.now)
        ).rowcount
        if spent == 1:
            if settle.audit is None:
                return NonceOutcome.CONSUMED, None
            record = self._append(conn, settle.audit, head=head, data=settle.data)
            return NonceOutcome.CONSUMED, record
        row = db.execute(self.sql(_WHY), (settle.nonce,)).fetchone()
        if row is None:
            return NonceOutcome.UNKNOWN, None
        if row[0] != settle.binding:
            return NonceOutcome.WRONG_DEVICE, None
        if row[1] is not None:
            return NonceOutcome.ALREADY_USED, None
        return NonceOutcome.EXPIRED, None

    def purge_nonces(self, *, before: int) -> int:
        """Delete nonces expired before ``before``; spent ones can go too, as their
        expiry already makes them unusable."""
        with self._tx() as conn:
            result = conn.execute(sql_delete(nonces).where(nonces.c.expires_at < before))
            return result.rowcount
