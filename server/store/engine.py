"""Connecting to the database: engines with the durability the verifier relies on, and the
transaction scopes every store module uses (writes, reads, relaxed writes)."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import InterfaceError as SqlInterfaceError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from server.errors import ServerError, UnavailableError
from server.store import AuditRecord

RETRY_AFTER_S = 2
AuditObserver = Callable[[AuditRecord], None]

_READ_ONLY = "envattest_read_only"
# Connections one process keeps: every statement is short (no connection is held across a
# request's other work) and the database shares the machine's cores, so more connections
# would only queue inside the database. No overflow: a connection opened and closed per burst
# costs PostgreSQL a process start each time; a checkout beyond the pool waits instead.
PG_POOL_SIZE = 20
POOL_WAIT_S = 10  # then 503 with Retry-After, as for a locked database
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
    # pool (``driver_read`` invalidates it; SQLAlchemy does for its own statements), so the
    # next request reconnects. Returning a connection costs no round trip: the hot paths
    # leave it idle (committed, or read in autocommit), where the reset's rollback is a no-op.
    # Two replicas of two workers stay under PostgreSQL's default max_connections of 100.
    return create_engine(
        url,
        pool_size=PG_POOL_SIZE,
        max_overflow=0,
        pool_timeout=POOL_WAIT_S,
        pool_recycle=900,
        pool_use_lifo=True,  # the busiest connections stay warm, their statements prepared
    )


def unavailable(exc: Exception) -> UnavailableError:
    """The 503 a locked or unreachable database becomes."""
    return UnavailableError(
        "the verifier's database is busy or unavailable; retry shortly",
        audit_detail=f"database error: {exc.__class__.__name__}",
        retry_after_s=RETRY_AFTER_S,
    )


def unavailable_errors(engine: Engine) -> tuple[type[Exception], ...]:
    """What a locked or unreachable database raises, from SQLAlchemy or from the driver
    itself (hot paths run driver SQL, whose errors SQLAlchemy does not wrap)."""
    dbapi = engine.dialect.dbapi
    raw = (dbapi.OperationalError, dbapi.InterfaceError) if dbapi is not None else ()
    return (OperationalError, SqlInterfaceError, PoolTimeoutError, *raw)


@contextmanager
def driver_read(engine: Engine) -> Iterator[Any]:
    """A pooled DBAPI connection for one hot-path read, in autocommit (no SQLAlchemy
    Connection, no transaction events): one round trip on PostgreSQL, where a transaction
    would add BEGIN and a ROLLBACK that also drops the connection's prepared statements.
    A database that is locked or gone is ``unavailable`` (503), and its connection dropped."""
    errors = unavailable_errors(engine)
    try:
        raw = engine.raw_connection()
    except errors as exc:
        raise unavailable(exc) from exc
    db: Any = raw.driver_connection
    postgres = engine.dialect.name == "postgresql"
    try:
        if postgres:
            db.autocommit = True  # client-side switch: no round trip
        yield db
    except errors as exc:
        raw.invalidate()
        raise unavailable(exc) from exc
    finally:
        if postgres and not db.closed:
            db.autocommit = False
        raw.close()


class WriterGate:
    """Orders one machine's hot SQLite writers: an exclusive ``flock`` on a file beside the
    database, held from ``BEGIN IMMEDIATE`` to ``COMMIT`` by each process's group committer.

    SQLite's busy handler polls for the write lock with sleeps that grow to 100 ms, so with
    two processes committing back to back one of them can lose the lock many times in a row
    (a p99 near a second). A process blocked on the flock is woken when it is released
    instead. Correctness does not rest on the gate: SQLite still locks, and writers that do
    not take it (the projector, the alert sender, the CLI) wait on SQLite's busy timeout."""

    def __init__(self, database: str) -> None:
        import fcntl

        self._flock = fcntl.flock
        self._exclusive, self._unlock = fcntl.LOCK_EX, fcntl.LOCK_UN
        self._fd = os.open(f"{database}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)

    def close(self) -> None:
        """Release the lock file."""
        os.close(self._fd)

    @contextmanager
    def held(self) -> Iterator[None]:
        """The gate, for one write transaction (blocking; never call on the event loop)."""
        self._flock(self._fd, self._exclusive)
        try:
            yield
        finally:
            self._flock(self._fd, self._unlock)


def writer_gate(engine: Engine) -> WriterGate | None:
    """The gate for a SQLite database file on a POSIX system, else None."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or os.name != "posix" or not database:
        return None
    if database == ":memory:" or database.startswith("file:"):
        return None
    return WriterGate(database)


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
        # pipeline mode needs libpq 14 or later (psycopg[binary] bundles one)
        dbapi = engine.dialect.dbapi
        self._pipelined = self._postgres and dbapi is not None and dbapi.Pipeline.is_supported()
        self._on_audit = on_audit

    @property
    def _unavailable_errors(self) -> tuple[type[Exception], ...]:
        return unavailable_errors(self.engine)

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
    def _driver_tx(self) -> Iterator[Any]:
        """A pooled DBAPI connection holding one write transaction, committed on leaving:
        the group committer's scope. No SQLAlchemy Connection and no transaction events, so
        a batch pays the database's work and the commit only. SQLite takes the write lock up
        front (BEGIN IMMEDIATE) as ``_tx`` does, behind the writer gate; PostgreSQL opens its
        transaction implicitly with the first statement."""
        try:
            raw = self.engine.raw_connection()
        except self._unavailable_errors as exc:
            raise unavailable(exc) from exc
        db: Any = raw.driver_connection
        gate = self._writer_gate
        try:
            with gate.held() if gate is not None else nullcontext():
                try:
                    if not self._postgres:
                        db.execute("BEGIN IMMEDIATE")
                    yield db
                    db.commit()
                except BaseException:
                    try:
                        db.rollback()
                    except Exception:  # a connection that cannot roll back is dropped
                        raw.invalidate()
                    raise
        except self._unavailable_errors as exc:
            if raw.is_valid:
                raw.invalidate()
            raise unavailable(exc) from exc
        finally:
            raw.close()

    @functools.cached_property
    def _writer_gate(self) -> WriterGate | None:
        return writer_gate(self.engine)

    def driver(self, conn: Connection) -> Any:
        """The DBAPI connection under ``conn``, for the few statements on the hot path: they
        run as plain SQL (``sql``) inside the same transaction, skipping statement
        compilation (PostgreSQL's driver prepares them after a few uses)."""
        return conn.connection.driver_connection

    def sql(self, statement: str) -> str:
        """``statement`` written with ``%s`` placeholders, in the driver's style."""
        return statement if self._postgres else statement.replace("%s", "?")

    def execute(self, db: Any, statement: str, params: Sequence[Any] = ()) -> Any:
        """Run a hot-path ``statement`` (``%s`` placeholders) on the DBAPI connection ``db``;
        the cursor. On PostgreSQL it is a server-side prepared statement from its first use
        (the hot statements have fixed text, so each is parsed and planned once per
        connection)."""
        if self._postgres:
            return db.execute(statement, params, prepare=True)
        return db.execute(statement.replace("%s", "?"), params)

    def pipeline(self, db: Any) -> AbstractContextManager[Any]:
        """Send the statements issued inside in one round trip (PostgreSQL pipeline mode;
        their cursors are read after the block). SQLite runs in process: nothing to do."""
        return db.pipeline() if self._pipelined else nullcontext()

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
