"""Nonces: single use enforced by the database (one conditional UPDATE), so it holds across
processes and replicas; spending one and writing its audit record is one transaction."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update

from server.audit.chain import serialize_data
from server.store import AuditEvent, AuditRecord, NonceOutcome
from server.store.auditlog import AuditLogStore
from server.store.groupcommit import GroupCommitter, Pending
from server.store.schema import nonces


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


class NonceStore(AuditLogStore):
    """Issue, spend and purge nonces."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._group_committer: GroupCommitter[_Settle] | None = None
        self._committer_lock = threading.Lock()

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
        one caller ever gets CONSUMED, and every spent nonce has its record. Settles with a
        record go through the group committer (one fsync for all queued at that moment)."""
        if audit is None:
            with self._tx() as conn:
                outcome, _ = self._settle_one(conn, _Settle(nonce, binding, now, None, None), None)
            return outcome, None
        settle = _Settle(nonce, binding, now, audit, serialize_data(audit.data))
        done = self._committer().submit(settle)
        return done.request.outcome, done.request.record

    def _committer(self) -> GroupCommitter[_Settle]:
        with self._committer_lock:
            if self._group_committer is None:
                self._group_committer = GroupCommitter(self._commit_settles)
            return self._group_committer

    def close(self) -> None:
        """Stop the group committer (if started) and release the database connections."""
        with self._committer_lock:
            committer, self._group_committer = self._group_committer, None
        if committer is not None:
            committer.close()
        self.engine.dispose()

    def _commit_settles(self, batch: list[Pending[_Settle]]) -> None:
        head: tuple[int, str] | None = None
        with self._tx() as conn:
            for pending in batch:
                settle = pending.request
                settle.outcome, settle.record = self._settle_one(conn, settle, head)
                if settle.record is not None:
                    head = (settle.record.seq, settle.record.hash)
        for pending in batch:
            if pending.request.record is not None:
                self._committed(pending.request.record)

    def _settle_one(
        self, conn: Connection, settle: _Settle, head: tuple[int, str] | None
    ) -> tuple[NonceOutcome, AuditRecord | None]:
        """(1) one conditional UPDATE spends the nonce; (2) its record is appended in the same
        transaction; otherwise (3) look up why it could not be spent (for the audit log)."""
        n = nonces.c
        result = conn.execute(
            sql_update(nonces)
            .where(
                n.nonce == settle.nonce,
                n.binding == settle.binding,
                n.consumed_at.is_(None),
                n.expires_at > settle.now,
            )
            .values(consumed_at=settle.now)
        )
        if result.rowcount == 1:
            if settle.audit is None:
                return NonceOutcome.CONSUMED, None
            record = self._append(conn, settle.audit, head=head, data=settle.data)
            return NonceOutcome.CONSUMED, record
        row = conn.execute(select(nonces).where(n.nonce == settle.nonce)).first()
        if row is None:
            return NonceOutcome.UNKNOWN, None
        if row.binding != settle.binding:
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
