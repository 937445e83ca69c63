"""``Store`` on SQLAlchemy Core: SQLite (WAL, one file) by default, PostgreSQL for replicas."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, func, insert, select, text
from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import InterfaceError as SqlInterfaceError

from server.audit import GENESIS_HASH, chain_hash, data_digest, serialize_data
from server.errors import UnavailableError
from server.store import (
    AuditEvent,
    AuditRecord,
    DeviceRecord,
    DuplicateKeyError,
    NonceOutcome,
    PendingEnrollment,
)
from server.store.schema import (
    audit_log,
    devices,
    enrollment_tokens,
    gateway_credentials,
    nonces,
    pending_enrollments,
)

_AUDIT_LOCK_KEY = 0x656E7661  # PostgreSQL advisory lock serializing audit appends
RETRY_AFTER_S = 2
AuditObserver = Callable[[AuditRecord], None]


_READ_ONLY = "envattest_read_only"


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 5.0}, pool_size=8
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's BEGIN below be the only transaction control, so writers take the
        # lock up front (BEGIN IMMEDIATE) instead of failing on upgrade from a read lock.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Reads take no write lock, so lookups never queue behind writers.
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the settings the verifier relies on."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _device(row: Any) -> DeviceRecord:
    return DeviceRecord(
        device_id=row.device_id,
        public_jwk=json.loads(row.public_jwk),
        jkt=row.jkt,
        key_class=row.key_class,
        enrolled_at=row.enrolled_at,
        revoked_at=row.revoked_at,
        erased_at=row.erased_at,
    )


def _audit(row: Any) -> AuditRecord:
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


@dataclass(frozen=True)
class GatewayCredentialRecord:
    """A relying party's credential for introspection (the secret by hash only)."""

    credential_id: str
    name: str
    secret_sha256: str
    created_at: int
    revoked_at: int | None = None


def _unavailable(exc: Exception) -> UnavailableError:
    return UnavailableError(
        "the verifier's database is busy or unavailable; retry shortly",
        audit_detail=f"database error: {exc.__class__.__name__}",
        retry_after_s=RETRY_AFTER_S,
    )


class SqlStore:
    """The verifier's database.

    Every statement runs inside ``_tx`` (writes) or ``_read``, which turn a locked or
    unreachable database into ``UnavailableError`` (503 with Retry-After), never a 500.
    ``on_audit`` is called after each audit record is committed (metrics hook).
    """

    def __init__(
        self, engine: Engine, *, clock: Any = time.time, on_audit: AuditObserver | None = None
    ) -> None:
        self.engine = engine
        self._clock = clock
        self._postgres = engine.dialect.name == "postgresql"
        self._on_audit = on_audit

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except (OperationalError, SqlInterfaceError) as exc:
            raise _unavailable(exc) from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect().execution_options(**{_READ_ONLY: True}) as conn:
                yield conn
        except (OperationalError, SqlInterfaceError) as exc:
            raise _unavailable(exc) from exc

    def _committed(self, record: AuditRecord) -> AuditRecord:
        if self._on_audit is not None:
            self._on_audit(record)
        return record

    def ping(self) -> None:
        """Raise UnavailableError if the database does not answer."""
        with self._tx() as conn:
            conn.execute(text("SELECT 1"))

    # enrollment tokens

    def add_enrollment_token(self, token_sha256: str, *, uses: int, expires_at: int) -> None:
        """Store a token by its hash."""
        with self._tx() as conn:
            conn.execute(
                insert(enrollment_tokens).values(
                    token_sha256=token_sha256,
                    uses_left=uses,
                    expires_at=expires_at,
                    created_at=int(self._clock()),
                )
            )

    def spend_enrollment_token(self, token_sha256: str, *, now: int) -> bool:
        """One conditional UPDATE: atomic under concurrency on both databases."""
        t = enrollment_tokens.c
        with self._tx() as conn:
            result = conn.execute(
                sql_update(enrollment_tokens)
                .where(t.token_sha256 == token_sha256, t.uses_left > 0, t.expires_at > now)
                .values(uses_left=t.uses_left - 1)
            )
            return result.rowcount == 1

    def enrollment_token_valid(self, token_sha256: str, *, now: int) -> bool:
        """A read: the token exists, has uses left and is unexpired."""
        t = enrollment_tokens.c
        with self._read() as conn:
            row = conn.execute(
                select(t.token_sha256).where(
                    t.token_sha256 == token_sha256, t.uses_left > 0, t.expires_at > now
                )
            ).first()
        return row is not None

    # devices

    def add_device(self, device: DeviceRecord, audit: AuditEvent) -> None:
        """Insert the device and its audit record together."""
        try:
            with self._tx() as conn:
                conn.execute(
                    insert(devices).values(
                        device_id=device.device_id,
                        public_jwk=json.dumps(device.public_jwk, sort_keys=True),
                        jkt=device.jkt,
                        key_class=device.key_class,
                        enrolled_at=device.enrolled_at,
                    )
                )
                record = self._append(conn, audit)
        except IntegrityError as exc:
            raise DuplicateKeyError(device.jkt) from exc
        self._committed(record)

    def get_device(self, device_id: str) -> DeviceRecord | None:
        """The device, or None."""
        with self._read() as conn:
            row = conn.execute(select(devices).where(devices.c.device_id == device_id)).first()
        return _device(row) if row is not None else None

    def list_devices(self) -> list[DeviceRecord]:
        """Every device, by enrollment time."""
        with self._read() as conn:
            rows = conn.execute(select(devices).order_by(devices.c.enrolled_at)).all()
        return [_device(r) for r in rows]

    def set_device_state(
        self, device_id: str, *, revoked_at: int | None = None, erased_at: int | None = None
    ) -> bool:
        """Mark a device revoked and/or erased; False if unknown."""
        values: dict[str, int] = {}
        if revoked_at is not None:
            values["revoked_at"] = revoked_at
        if erased_at is not None:
            values["erased_at"] = erased_at
        with self._tx() as conn:
            result = conn.execute(
                sql_update(devices).where(devices.c.device_id == device_id).values(**values)
            )
            return result.rowcount == 1

    def erase_device(self, device_id: str, *, now: int) -> int:
        """Revoke and erase: drop the data of the device's audit records (the chain keeps
        their digests and still verifies) and mark the device erased. Returns records erased."""
        a = audit_log.c
        with self._tx() as conn:
            conn.execute(
                sql_update(devices)
                .where(devices.c.device_id == device_id)
                .values(revoked_at=func.coalesce(devices.c.revoked_at, now), erased_at=now)
            )
            result = conn.execute(
                sql_update(audit_log)
                .where(a.device_id == device_id, a.data.is_not(None))
                .values(data=None)
            )
            return result.rowcount

    # nonces

    def spend_nonce(
        self, nonce: str, *, binding: str, expires_at: int, now: int, audit: AuditEvent | None
    ) -> tuple[NonceOutcome, AuditRecord | None]:
        """Insert the spent nonce and append its audit record in one durable transaction; the
        primary key lets exactly one caller insert it (ON CONFLICT DO NOTHING on both
        databases, so a PostgreSQL transaction is never aborted by the conflict)."""
        dialect_insert = postgres_insert if self._postgres else sqlite_insert
        statement = (
            dialect_insert(nonces)
            .values(nonce=nonce, binding=binding, expires_at=expires_at, consumed_at=now)
            .on_conflict_do_nothing(index_elements=["nonce"])
            .returning(nonces.c.nonce)
        )
        record = None
        with self._tx() as conn:
            if conn.execute(statement).first() is None:
                return NonceOutcome.ALREADY_USED, None
            if audit is not None:
                record = self._append(conn, audit)
        return NonceOutcome.CONSUMED, None if record is None else self._committed(record)

    def purge_nonces(self, *, before: int) -> int:
        """Delete nonces expired before ``before``; spent ones can go too, as their
        expiry already makes them unusable."""
        with self._tx() as conn:
            result = conn.execute(sql_delete(nonces).where(nonces.c.expires_at < before))
            return result.rowcount

    # pending TPM enrollments

    def add_pending_enrollment(self, pending: PendingEnrollment) -> None:
        """Store a pending TPM enrollment."""
        with self._tx() as conn:
            conn.execute(
                insert(pending_enrollments).values(
                    enrollment_id=pending.enrollment_id,
                    public_jwk=json.dumps(pending.public_jwk, sort_keys=True),
                    secret_sha256=pending.secret_sha256,
                    details=json.dumps(pending.details, sort_keys=True),
                    expires_at=pending.expires_at,
                )
            )

    def take_pending_enrollment(self, enrollment_id: str, *, now: int) -> PendingEnrollment | None:
        """Delete-and-return, so one activation attempt per enrollment."""
        p = pending_enrollments.c
        with self._tx() as conn:
            row = conn.execute(
                select(pending_enrollments).where(p.enrollment_id == enrollment_id)
            ).first()
            if row is None:
                return None
            deleted = conn.execute(
                sql_delete(pending_enrollments).where(p.enrollment_id == enrollment_id)
            )
            if deleted.rowcount != 1 or row.expires_at <= now:
                return None
        return PendingEnrollment(
            enrollment_id=row.enrollment_id,
            public_jwk=json.loads(row.public_jwk),
            secret_sha256=row.secret_sha256,
            details=json.loads(row.details),
            expires_at=row.expires_at,
        )

    # audit

    def _append(self, conn: Connection, audit: AuditEvent) -> AuditRecord:
        if self._postgres:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_LOCK_KEY})
        head = conn.execute(
            select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
        ).first()
        seq, prev = (head.seq + 1, head.hash) if head is not None else (1, GENESIS_HASH)
        at = int(self._clock())
        data = serialize_data(audit.data)
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
        conn.execute(
            insert(audit_log).values(
                seq=seq,
                at=at,
                event=audit.event,
                device_id=audit.device_id,
                decision=audit.decision,
                data=data,
                data_sha256=digest,
                prev_hash=prev,
                hash=record_hash,
            )
        )
        return AuditRecord(
            seq, at, audit.event, audit.device_id, audit.decision, audit.data, digest, prev,
            record_hash,
        )  # fmt: skip

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
            return [_audit(r) for r in conn.execute(query)]

    def audit_count(self) -> int:
        """How many audit records exist."""
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())

    def audit_record(self, seq: int) -> AuditRecord | None:
        """One audit record by sequence number."""
        with self._read() as conn:
            row = conn.execute(select(audit_log).where(audit_log.c.seq == seq)).first()
        return _audit(row) if row is not None else None

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
            return [_audit(r) for r in conn.execute(query)]

    def purge_audit_data(self, seqs: Sequence[int]) -> int:
        """Drop the data of these records; the chain keeps their digests and still verifies."""
        if not seqs:
            return 0
        a = audit_log.c
        with self._tx() as conn:
            result = conn.execute(
                sql_update(audit_log)
                .where(a.seq.in_(list(seqs)), a.data.is_not(None))
                .values(data=None)
            )
            return result.rowcount

    # gateway credentials (relying parties)

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
