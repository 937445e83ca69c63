"""The audit log table: appending to the hash chain, reading it, purging record data."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy import update as sql_update

from server.audit.chain import GENESIS_HASH, chain_hash, data_digest, serialize_data
from server.audit.coverage import PURGE_EVENT, purge_covers
from server.store import AuditEvent, AuditRecord
from server.store.engine import SqlBase
from server.store.schema import audit_log

_AUDIT_LOCK_KEY = 0x656E7661  # PostgreSQL advisory lock serializing audit appends
_IN_BATCH = 500  # sequence numbers per IN (...) list
_SQLITE_ROWS = 256  # audit rows per INSERT on SQLite (9 parameters each, limit 32,766)
_LOCK = "SELECT pg_advisory_xact_lock(%s)"
_HEAD = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
_INSERT_ROWS = (
    "INSERT INTO audit_log (seq, at, event, device_id, decision, data, data_sha256, prev_hash,"
    " hash) VALUES {rows}"
)
# PostgreSQL: one array per column, so the statement's text (and its prepared plan) is the
# same for any number of rows; sent in binary (``%b``), which needs no quoting of the JSON
_INSERT_ARRAYS = (
    "INSERT INTO audit_log (seq, at, event, device_id, decision, data, data_sha256, prev_hash,"
    " hash) SELECT * FROM unnest(%b::bigint[], %b::bigint[],"
    " %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[])"
)
_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s)"
Row = tuple[int, int, str, str | None, str | None, str, str, str, str]


def audit_from_row(row: Any) -> AuditRecord:
    """An ``AuditRecord`` from an ``audit_log`` row."""
    return AuditRecord(
        seq=row.seq,
        at=row.at,
        event=row.event,
        device_id=row.device_id,
        decision=row.decision,
        data=json.loads(row.data) if row.data is not None else None,
        data_sha256=row.data_sha256,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class AuditLogStore(SqlBase):
    """Append-only, hash-chained audit records."""

    def _append(self, conn: Connection, audit: AuditEvent) -> AuditRecord:
        """Append one record inside ``conn``'s transaction."""
        db = self.driver(conn)
        with self.pipeline(db):
            head = self._lock_chain_head(db)
        return self._append_many(db, head, [(audit, None)])[0]

    def _lock_chain_head(self, db: Any) -> Any:
        """Issue the read of the chain's head on the DBAPI connection ``db`` (inside a
        transaction); the cursor to take it from. On PostgreSQL the read follows a
        transaction-scoped advisory lock, so appenders on every replica queue here and each
        reads the head the previous one committed (the read's snapshot is taken after the
        lock is granted); SQLite's BEGIN IMMEDIATE already holds the database's write lock."""
        if self._postgres:
            self.execute(db, _LOCK, (_AUDIT_LOCK_KEY,))
        return self.execute(db, _HEAD)

    def _append_many(
        self, db: Any, head: Any, events: Sequence[tuple[AuditEvent, str | None]]
    ) -> list[AuditRecord]:
        """Chain ``events`` (each with its data already serialized, or None) onto the head
        read by ``_lock_chain_head`` and insert them all in one statement."""
        row = head.fetchone()
        seq, prev = (row[0], row[1]) if row is not None else (0, GENESIS_HASH)
        records: list[AuditRecord] = []
        rows: list[Row] = []
        for audit, serialized in events:
            seq, at = seq + 1, int(self._clock())
            data = serialize_data(audit.data) if serialized is None else serialized
            digest = data_digest(data)
            record_hash = chain_hash(
                prev_hash=prev,
                seq=seq,
                at=at,
                event=audit.event,
                device_id=audit.device_id,
                decision=audit.decision,
                data_sha256=digest,
            )
            rows.append(
                (seq, at, audit.event, audit.device_id, audit.decision, data, digest, prev,
                 record_hash)
            )  # fmt: skip
            records.append(
                AuditRecord(
                    seq, at, audit.event, audit.device_id, audit.decision, audit.data, digest,
                    prev, record_hash,
                )
            )  # fmt: skip
            prev = record_hash
        self._insert_rows(db, rows)
        return records

    def _insert_rows(self, db: Any, rows: Sequence[Row]) -> None:
        if not rows:
            return
        if self._postgres:
            self.execute(db, _INSERT_ARRAYS, [list(column) for column in zip(*rows, strict=True)])
            return
        for i in range(0, len(rows), _SQLITE_ROWS):
            chunk = rows[i : i + _SQLITE_ROWS]
            statement = _INSERT_ROWS.format(rows=", ".join([_ROW] * len(chunk)))
            self.execute(db, statement, [value for row in chunk for value in row])

    def append_audit(self, event: AuditEvent) -> AuditRecord:
        """Append and commit (durable: WAL with synchronous=FULL, or PostgreSQL commit)."""
        with self._tx() as conn:
            record = self._append(conn, event)
        return self._committed(record)

    def audit_records(
        self,
        *,
        after_seq: int = 0,
        limit: int | None = None,
        device_id: str | None = None,
        since: int | None = None,
        decision: str | None = None,
    ) -> list[AuditRecord]:
        """Audit records in sequence order, filtered."""
        a = audit_log.c
        query = select(audit_log).where(a.seq > after_seq).order_by(a.seq)
        if device_id is not None:
            query = query.where(a.device_id == device_id)
        if since is not None:
            query = query.where(a.at >= since)
        if decision is not None:
            query = query.where(a.decision == decision)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return [audit_from_row(r) for r in conn.execute(query)]

    def audit_events(self, events: Iterable[str]) -> list[AuditRecord]:
        """Every record of these events, in order (the few purge and erasure events)."""
        a = audit_log.c
        query = select(audit_log).where(a.event.in_(list(events))).order_by(a.seq)
        with self._read() as conn:
            return [audit_from_row(r) for r in conn.execute(query)]

    def audit_count(self) -> int:
        """How many audit records exist."""
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())

    def audit_record(self, seq: int) -> AuditRecord | None:
        """One audit record by sequence number."""
        with self._read() as conn:
            row = conn.execute(select(audit_log).where(audit_log.c.seq == seq)).first()
        return audit_from_row(row) if row is not None else None

    def iter_audit(self, *, batch: int = 1000, **filters: Any) -> Iterator[AuditRecord]:
        """Every (filtered) audit record in order, fetched in batches: constant memory."""
        after = 0
        while True:
            page = self.audit_records(after_seq=after, limit=batch, **filters)
            yield from page
            if len(page) < batch:
                return
            after = page[-1].seq

    def audit_with_data_before(
        self, *, events: Sequence[str], before: int, after_seq: int = 0, limit: int = 1000
    ) -> list[AuditRecord]:
        """Records of ``events`` written before ``before`` whose data is still held."""
        a = audit_log.c
        query = (
            select(audit_log)
            .where(a.seq > after_seq, a.event.in_(events), a.at < before, a.data.is_not(None))
            .order_by(a.seq)
            .limit(limit)
        )
        with self._read() as conn:
            return [audit_from_row(r) for r in conn.execute(query)]

    def purge_audit_data(self, seqs: Sequence[int], *, audit: AuditEvent | None = None) -> int:
        """Drop the data of these records; the chain keeps their digests. With ``audit`` (a
        purge event), the event is appended in the same transaction with ``records_purged``
        and the ``covers`` member that lets ``audit verify`` accept the emptied records."""
        if not seqs and audit is None:
            return 0
        a = audit_log.c
        purged = 0
        with self._tx() as conn:
            for i in range(0, len(seqs), _IN_BATCH):
                chunk = list(seqs[i : i + _IN_BATCH])
                result = conn.execute(
                    sql_update(audit_log)
                    .where(a.seq.in_(chunk), a.data.is_not(None))
                    .values(data=None)
                )
                purged += result.rowcount
            record = None
            if audit is not None:
                if audit.event != PURGE_EVENT:
                    raise ValueError(f"a purge is recorded as {PURGE_EVENT!r}")
                data = {**audit.data, "records_purged": purged}
                if seqs:
                    data["covers"] = purge_covers(seqs)
                record = self._append(conn, replace(audit, data=data))
        if record is not None:
            self._committed(record)
        if purged:
            self._scrub()
        return purged
