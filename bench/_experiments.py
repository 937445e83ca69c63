"""Proposed server changes, applied by monkeypatching inside a benchmark server process only,
so their gain can be measured before anyone edits ``server/``.

``ENVATTEST_BENCH_PATCHES=deferred-reads,nonce-nosync,writer-lock`` (comma list) in the
environment of ``bench._serve``. Never imported by the server itself.

- ``deferred-reads``: reads open a plain (deferred) transaction instead of BEGIN IMMEDIATE,
  so a device lookup no longer waits for the write lock behind fsyncing writers.
- ``nonce-nosync``: the challenge's INSERT commits with ``synchronous=NORMAL`` (no fsync);
  the next FULL commit (the audit append) makes it durable anyway, and a nonce lost to a
  power cut only costs the client a retry.
- ``writer-lock``: one in-process lock around write transactions, so threads queue on a
  lock instead of SQLite's sleeping busy handler (1..100 ms back-off steps).
- ``sync-normal``: every commit with ``synchronous=NORMAL`` (WAL): an upper bound only; a
  power cut could lose the last audit records, which DESIGN does not allow.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

PATCHES_ENV = "ENVATTEST_BENCH_PATCHES"
KNOWN = frozenset({"deferred-reads", "nonce-nosync", "writer-lock", "sync-normal"})


def apply_from_env() -> frozenset[str]:
    """Apply the patches named in the environment; return them."""
    chosen = frozenset(p for p in os.environ.get(PATCHES_ENV, "").split(",") if p)
    unknown = chosen - KNOWN
    if unknown:
        raise SystemExit(f"unknown bench patches: {', '.join(sorted(unknown))}")
    if chosen:
        _apply(chosen)
    return chosen


def _apply(chosen: frozenset[str]) -> None:
    from sqlalchemy import Connection, Engine, create_engine, event, insert
    from sqlalchemy.exc import InterfaceError, OperationalError

    from server.store import sql
    from server.store.schema import nonces

    sync = "NORMAL" if "sync-normal" in chosen else "FULL"

    def sqlite_engine(url: str) -> Engine:
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 5.0}, pool_size=8
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            options = conn.get_execution_options()
            if options.get("envattest_read"):
                conn.exec_driver_sql("BEGIN")
                return
            if "nonce-nosync" in chosen:
                level = "NORMAL" if options.get("envattest_nosync") else sync
                conn.exec_driver_sql(f"PRAGMA synchronous={level}")
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    sql._sqlite_engine = sqlite_engine

    if "deferred-reads" in chosen:

        @contextmanager
        def _read(self: sql.SqlStore) -> Iterator[Connection]:
            try:
                with self.engine.connect().execution_options(envattest_read=True) as conn:
                    yield conn
            except (OperationalError, InterfaceError) as exc:
                raise sql._unavailable(exc) from exc

        sql.SqlStore._read = _read  # type: ignore[method-assign]

    if "writer-lock" in chosen:
        lock = threading.Lock()
        original_tx = sql.SqlStore._tx

        @contextmanager
        def _tx(self: sql.SqlStore) -> Iterator[Connection]:
            with lock, original_tx(self) as conn:
                yield conn

        sql.SqlStore._tx = _tx  # type: ignore[method-assign]

    if "nonce-nosync" in chosen:

        def add_nonce(self: sql.SqlStore, nonce: str, *, binding: str, expires_at: int) -> None:
            try:
                with (
                    self.engine.connect().execution_options(envattest_nosync=True) as conn,
                    conn.begin(),
                ):
                    conn.execute(
                        insert(nonces).values(nonce=nonce, binding=binding, expires_at=expires_at)
                    )
            except (OperationalError, InterfaceError) as exc:
                raise sql._unavailable(exc) from exc

        sql.SqlStore.add_nonce = add_nonce  # type: ignore[method-assign]
