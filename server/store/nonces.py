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

from sqlalchemy import delete as sql_delete

from server.audit.chain import serialize_data
from server.store import AuditEvent, AuditRecord, NonceOutcome
from server.store.auditlog import AuditLogStore
from server.store.groupcommit import GroupCommitter, Pending
from server.store.schema import nonces

# ON CONFLICT DO NOTHING on both databases, so a PostgreSQL transaction holding other spends
# of the same batch is never aborted by a replay. PostgreSQL takes one array per column (one
# statement text for any batch size, so it stays prepared; sent in binary, ``%b``); SQLite a
# row list.
_SPEND_ARRAYS = (
    "INSERT INTO nonces (nonce, binding, expires_at, consumed_at)"
    " SELECT * FROM unnest(%b::text[], %b::text[], %b::bigint[], %b::bigint[])"
    " ON CONFLICT (nonce) DO NOTHING RETURNING nonce"
)
_SPEND_ROWS = (
    "INSERT INTO nonces (nonce, binding, expires_at, consumed_at) VALUES {rows}"
    " ON CONFLICT (nonce) DO NOTHING RETURNING nonce"
)
_SQLITE_ROWS = 1000  # spends per INSERT on SQLite (4 parameters each, limit 32,766)


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
        gate = self.__dict__.pop("_writer_gate", None)  # opened with the first batch
        if gate is not None:
            gate.close()
        self.engine.dispose()

    def _commit_batch(self, batch: list[Pending[_Spend]]) -> None:
        spends = [pending.request for pending in batch]
        with self._driver_tx() as db:
            self._settle(db, spends)
        for spend in spends:
            if spend.record is not None:
                self._committed(spend.record)

    def _settle(self, db: Any, spends: list[_Spend]) -> None:
        """Spend a batch inside one transaction on the DBAPI connection ``db``; set each
        spend's outcome and record. PostgreSQL: two round trips and the commit."""
        # (1) one caller per nonce: a duplicate within the batch is a replay
        first: dict[str, _Spend] = {}
        for spend in spends:
            first.setdefault(spend.nonce, spend)
        # (2) one insert spends them all, in nonce order: concurrent batches on other
        # processes or replicas then lock shared nonces in the same order and never deadlock;
        # the chain head is read (under the advisory lock) in the same round trip, after
        # the nonces, so no transaction waits for a nonce while holding the chain
        fresh = [first[nonce] for nonce in sorted(first)]
        audited = any(spend.audit is not None for spend in fresh)
        with self.pipeline(db):
            inserted = self._insert_spends(db, fresh)
            head = self._lock_chain_head(db) if audited else None
        won = {row[0] for cursor in inserted for row in cursor.fetchall()}
        # (3) the winners' records, chained in arrival order, in one insert
        winners = [s for s in spends if first[s.nonce] is s and s.nonce in won]
        for spend in winners:
            spend.outcome = NonceOutcome.CONSUMED
        logged = [(s, (s.audit, s.data)) for s in winners if s.audit is not None]
        if head is not None:
            records = self._append_many(db, head, [event for _, event in logged])
            for (spend, _), record in zip(logged, records, strict=True):
                spend.record = record

    def _insert_spends(self, db: Any, fresh: list[_Spend]) -> list[Any]:
        """Issue the inserts spending ``fresh`` (distinct nonces); their cursors, each
        returning the nonces this transaction inserted."""
        if self._postgres:
            columns = [
                [s.nonce for s in fresh],
                [s.binding for s in fresh],
                [s.expires_at for s in fresh],
                [s.now for s in fresh],
            ]
            return [self.execute(db, _SPEND_ARRAYS, columns)]
        cursors = []
        for i in range(0, len(fresh), _SQLITE_ROWS):
            chunk = fresh[i : i + _SQLITE_ROWS]
            statement = _SPEND_ROWS.format(rows=", ".join(["(%s, %s, %s, %s)"] * len(chunk)))
            params = [v for s in chunk for v in (s.nonce, s.binding, s.expires_at, s.now)]
            cursors.append(self.execute(db, statement, params))
        return cursors

    def purge_nonces(self, *, before: int) -> int:
        """Delete spent nonces that expired before ``before``: they can never be presented."""
        with self._tx() as conn:
            result = conn.execute(sql_delete(nonces).where(nonces.c.expires_at < before))
            return result.rowcount
