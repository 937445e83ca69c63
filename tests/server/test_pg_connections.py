"""Pooled PostgreSQL connections: hot statements stay prepared on their connection, a
connection the database dropped fails one request with a 503 and the next one reconnects,
and a request that cannot get a connection in time is a 503, not a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from server.errors import UnavailableError
from server.store import AuditEvent, DeviceRecord, NonceOutcome
from server.store.engine import driver_read
from server.store.migrate import upgrade
from server.store.sql import SqlStore, make_engine

NOW = 1_800_000_000
DEVICE = DeviceRecord("dev_a", {"kty": "EC"}, "jkt-a", "software", NOW)
ENROLLED = AuditEvent("enroll", "dev_a", "allow", {})


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[SqlStore]:
    engine = make_engine(postgres_url)
    upgrade(engine)
    store = SqlStore(engine, clock=lambda: NOW)
    store.add_device(DEVICE, ENROLLED)
    try:
        yield store
    finally:
        store.close()


def _prepared(store: SqlStore) -> list[str]:
    with driver_read(store.engine) as db:
        rows = db.execute("SELECT statement FROM pg_prepared_statements").fetchall()
    return [" ".join(r[0].split()) for r in rows]


def _spend(store: SqlStore, nonce: str) -> NonceOutcome:
    event = AuditEvent("attest", "dev_a", "allow", {"nonce": nonce})
    return store.spend_nonce(nonce, binding="dev_a", expires_at=NOW + 60, now=NOW, audit=event)[0]


def test_hot_statements_stay_prepared_on_their_connection(pg_store: SqlStore) -> None:
    # one client at a time: every checkout returns the same pooled connection
    for i in range(6):
        assert pg_store.get_device("dev_a") == DEVICE
        assert _spend(pg_store, f"n{i}") is NonceOutcome.CONSUMED
    prepared = _prepared(pg_store)
    # a read in a transaction would end in ROLLBACK, which drops every prepared statement
    assert any("FROM devices" in s for s in prepared), prepared
    assert any(s.startswith("INSERT INTO nonces") for s in prepared), prepared
    assert any(s.startswith("INSERT INTO audit_log") for s in prepared), prepared


def _drop_connections(postgres_url: str) -> int:
    """What a database restart does to a verifier's pool: every session ends."""
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).all()
            )
    finally:
        admin.dispose()


def test_a_dropped_connection_fails_one_read_then_the_next_reconnects(
    pg_store: SqlStore, postgres_url: str
) -> None:
    assert pg_store.get_device("dev_a") == DEVICE
    assert _drop_connections(postgres_url) >= 1
    with pytest.raises(UnavailableError, match="retry shortly"):
        pg_store.get_device("dev_a")
    assert pg_store.get_device("dev_a") == DEVICE  # no pre-ping needed: a fresh connection


def test_a_dropped_connection_fails_one_settle_then_the_next_reconnects(
    pg_store: SqlStore, postgres_url: str
) -> None:
    assert _spend(pg_store, "before") is NonceOutcome.CONSUMED
    assert _drop_connections(postgres_url) >= 1
    with pytest.raises(UnavailableError, match="retry shortly"):
        _spend(pg_store, "during")
    # nothing of the failed settle was written: the same nonce can still be spent once
    assert _spend(pg_store, "during") is NonceOutcome.CONSUMED
    assert _spend(pg_store, "during") is NonceOutcome.ALREADY_USED


def test_waiting_too_long_for_a_pooled_connection_is_a_503(tmp_path: Path) -> None:
    engine = create_engine(
        f"sqlite:///{tmp_path / 'db.sqlite'}", pool_size=1, max_overflow=0, pool_timeout=0.1
    )
    store = SqlStore(engine)
    held = engine.connect()  # every connection of the pool is busy
    try:
        with pytest.raises(UnavailableError, match="retry shortly"):
            store.ping()
    finally:
        held.close()
    store.ping()
