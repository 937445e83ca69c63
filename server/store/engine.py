"""Connecting to the database: engines with the durability the verifier relies on, and the
transaction scopes every store module uses (writes, reads, relaxed writes)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import InterfaceError as SqlInterfaceError
from sqlalchemy.exc import OperationalError

from server.errors import ServerError, UnavailableError
from server.store import AuditRecord

RETRY_AFTER_S = 2
AuditObserver = Callable[[AuditRecord], None]

_READ_ONLY = "envattest_read_only"
_SCRUB_TRIES = 40


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
        # erased data must not linger in free pages of the database file
        cur.execute("PRAGMA secure_delete=ON")
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
    # No pre-ping: it would add a round trip to every checkout. A connection broken by a
    # database restart fails its first use with a 503 (Retry-After) and is dropped from the
    # pool (``_driver_read`` invalidates it; SQLAlchemy does for its own statements).
    return create_engine(url, pool_size=16, max_overflow=8, pool_recycle=900)


def unavailable(exc: Exception) -> UnavailableError:
    """The 503 a locked or unreachable database becomes."""
    return UnavailableError(
        "the verifier's database is busy or unavailable; retry shortly",
        audit_detail=f"database error: {exc.__class__.__name__}",
        retry_after_s=RETRY_AFTER_S,
    )


class SqlBase:
    """Engine, clock and the transaction scopes.

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

    @property
    def _unavailable_errors(self) -> tuple[type[Exception], ...]:
        # hot paths run driver SQL (``driver``), whose errors SQLAlchemy does not wrap
        dbapi = self.engine.dialect.dbapi
        raw = (dbapi.OperationalError, dbapi.InterfaceError) if dbapi is not None else ()
        return (OperationalError, SqlInterfaceError, *raw)

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except self._unavailable_errors as exc:
            raise unavailable(exc) from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect().execution_options(**{_READ_ONLY: True}) as conn:
                yield conn
        except self._unavailable_errors as exc:
            raise unavailable(exc) from exc

    @contextmanager
    def _driver_read(self) -> Iterator[Any]:
        """A pooled DBAPI connection for one hot-path read (no SQLAlchemy Connection, no
        transaction events: on SQLite an autocommit read, on PostgreSQL rolled back on
        return to the pool)."""
        try:
            raw = self.engine.raw_connection()
        except self._unavailable_errors as exc:
            raise unavailable(exc) from exc
        try:
            yield raw.driver_connection
        except self._unavailable_errors as exc:
            raw.invalidate()
            raise unavailable(exc) from exc
        finally:
            raw.close()

    def driver(self, conn: Connection) -> Any:
        """The DBAPI connection under ``conn``, for the few statements on the hot path: they
        run as plain SQL (``sql``) inside the same transaction, skipping statement
        compilation (PostgreSQL's driver prepares them after a few uses)."""
        return conn.connection.driver_connection

    def sql(self, statement: str) -> str:
        """``statement`` written with ``%s`` placeholders, in the driver's style."""
        return statement if self._postgres else statement.replace("%s", "?")

    def _committed(self, record: AuditRecord) -> AuditRecord:
        if self._on_audit is not None:
            self._on_audit(record)
        return record

    def _scrub(self) -> None:
        """After erasing: on SQLite, move the WAL into the database file and truncate it, so
        erased values survive in neither file (``secure_delete`` zeroes freed space). On
        PostgreSQL, dead row versions stay until VACUUM (docs/resilience.md)."""
        if self._postgres:
            return
        for _ in range(_SCRUB_TRIES):
            with self.engine.connect() as conn:
                raw = conn.connection.driver_connection
                assert raw is not None
                busy = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                return
            time.sleep(0.05)
        raise ServerError(
            "erased, but readers kept the write-ahead log from being truncated: run the "
            "erase (or purge) again when the server is less busy to scrub the files"
        )

    def ping(self) -> None:
        """Raise UnavailableError if the database does not answer."""
        with self._tx() as conn:
            conn.execute(text("SELECT 1"))
