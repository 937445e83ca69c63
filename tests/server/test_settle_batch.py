"""The settle of a batch of spends: one insert spends every nonce, one insert appends every
winner's audit record, duplicates within a batch have one winner, a failed batch writes
nothing, and two processes racing on the same nonces on one PostgreSQL spend each once and
keep one verifiable chain."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.audit import verify_chain
from server.errors import UnavailableError
from server.store import AuditEvent, NonceOutcome
from server.store.groupcommit import Pending
from server.store.migrate import upgrade
from server.store.nonces import _Spend
from server.store.sql import SqlStore, make_engine
from tests.pg import database_url

NOW = 1_800_000_000
EXPIRES = NOW + 120


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-without-pipeline"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    engine = make_engine(database_url(request, tmp_path, request.param))
    upgrade(engine)
    sql_store = SqlStore(engine, clock=lambda: NOW)
    if request.param == "postgresql-without-pipeline":  # libpq older than 14
        sql_store._pipelined = False
    try:
        yield sql_store
    finally:
        sql_store.close()


def _spend(nonce: str, *, audited: bool = True, tag: int = 0) -> Pending[_Spend]:
    audit = AuditEvent("attest", "dev_a", "allow", {"nonce": nonce, "tag": tag})
    data = f'{{"nonce":"{nonce}","tag":{tag}}}' if audited else None
    return Pending(_Spend(nonce, "dev_a", EXPIRES, NOW, audit if audited else None, data))


def _settled(store: SqlStore, batch: list[Pending[_Spend]]) -> list[_Spend]:
    store._commit_batch(batch)
    return [p.request for p in batch]


class _Statements:
    """Records the hot-path statements a store runs, with their parameters."""

    def __init__(self, store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[tuple[str, Any]] = []
        execute = store.execute

        def spy(db: Any, statement: str, params: Any = ()) -> Any:
            self.seen.append((" ".join(statement.split()), params))
            return execute(db, statement, params)

        monkeypatch.setattr(store, "execute", spy)

    def inserts_into(self, table: str) -> list[Any]:
        return [p for s, p in self.seen if s.startswith(f"INSERT INTO {table} ")]


def test_duplicates_within_one_batch_have_exactly_one_winner(store: SqlStore) -> None:
    spends = _settled(
        store, [_spend("n1", tag=1), _spend("n2", tag=2), _spend("n1", tag=3), _spend("n3")]
    )
    assert [s.outcome for s in spends] == [
        NonceOutcome.CONSUMED, NonceOutcome.CONSUMED, NonceOutcome.ALREADY_USED,
        NonceOutcome.CONSUMED,
    ]  # fmt: skip
    assert spends[2].record is None
    # the winners' records, in arrival order, each returned to its own caller
    records = store.audit_records()
    assert [r.data["nonce"] for r in records if r.data] == ["n1", "n2", "n3"]
    assert [s.record for s in spends if s.record is not None] == records
    assert records[0].data == {"nonce": "n1", "tag": 1}  # the first caller won
    verify_chain(records)


def test_a_nonce_spent_by_an_earlier_batch_is_refused_and_logs_nothing(store: SqlStore) -> None:
    _settled(store, [_spend("n1")])
    later = _settled(store, [_spend("n2"), _spend("n1"), _spend("n4")])
    assert [s.outcome for s in later] == [
        NonceOutcome.CONSUMED, NonceOutcome.ALREADY_USED, NonceOutcome.CONSUMED,
    ]  # fmt: skip
    records = store.audit_records()
    assert [r.seq for r in records] == [1, 2, 3]
    assert [r.data["nonce"] for r in records if r.data] == ["n1", "n2", "n4"]
    verify_chain(records)


def test_spends_without_an_audit_record_append_nothing(store: SqlStore) -> None:
    spends = _settled(store, [_spend("e1", audited=False), _spend("e1", audited=False)])
    assert [s.outcome for s in spends] == [NonceOutcome.CONSUMED, NonceOutcome.ALREADY_USED]
    assert store.audit_records() == []


def test_a_batch_spends_in_one_insert_and_appends_in_one_insert(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements = _Statements(store, monkeypatch)
    _settled(store, [_spend(f"n{i:02}") for i in range(20)])
    assert len(statements.inserts_into("nonces")) == 1
    assert len(statements.inserts_into("audit_log")) == 1
    assert len(statements.seen) == (4 if store._postgres else 3)  # + lock, head
    assert len(store.audit_records()) == 20


def test_nonces_are_inserted_in_one_global_order(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two transactions inserting shared nonces in opposite orders would wait for each other
    # (a deadlock PostgreSQL breaks by failing one batch): every batch inserts in nonce order.
    statements = _Statements(store, monkeypatch)
    _settled(store, [_spend(n) for n in ("nc", "na", "nd", "nb")])
    (params,) = statements.inserts_into("nonces")
    sent = params[0] if store._postgres else params[0::4]
    assert sent == ["na", "nb", "nc", "nd"]


def test_a_failed_batch_spends_no_nonce_and_appends_no_record(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _settled(store, [_spend("n1")])
    insert_rows = store._insert_rows

    def insert_then_fail(db: Any, rows: Any) -> None:
        insert_rows(db, rows)  # both inserts made, then the transaction fails
        raise UnavailableError("connection lost", audit_detail="test", retry_after_s=1)

    monkeypatch.setattr(store, "_insert_rows", insert_then_fail)
    with pytest.raises(UnavailableError, match="connection lost"):
        store._commit_batch([_spend("n2"), _spend("n3")])
    monkeypatch.undo()
    assert [r.data["nonce"] for r in store.audit_records() if r.data] == ["n1"]
    # the failed batch's nonces were rolled back with it: still unspent
    retried = _settled(store, [_spend("n2"), _spend("n3"), _spend("n1")])
    assert [s.outcome for s in retried] == [
        NonceOutcome.CONSUMED, NonceOutcome.CONSUMED, NonceOutcome.ALREADY_USED,
    ]  # fmt: skip
    verify_chain(store.audit_records())


def test_two_processes_racing_on_shared_nonces_spend_each_once_on_one_chain(
    postgres_url: str,
) -> None:
    # two engines: two processes (or replicas) with their own pools and writer threads
    engine = make_engine(postgres_url)
    upgrade(engine)
    stores = [SqlStore(engine), SqlStore(make_engine(postgres_url))]
    nonces = [f"race-{i:03}" for i in range(120)]
    outcomes: dict[str, list[NonceOutcome]] = {n: [] for n in nonces}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def spend_all(seed: int) -> None:
        order = list(nonces)
        random.Random(seed).shuffle(order)
        for nonce in order:
            event = AuditEvent("attest", "dev_a", "allow", {"nonce": nonce, "by": seed})
            try:
                outcome, _ = stores[seed % 2].spend_nonce(
                    nonce, binding="dev_a", expires_at=EXPIRES, now=NOW, audit=event
                )
            except BaseException as exc:  # collected: every failure is a defect here
                with lock:
                    errors.append(exc)
                continue
            with lock:
                outcomes[nonce].append(outcome)

    threads = [threading.Thread(target=spend_all, args=(seed,)) for seed in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        for nonce in nonces:
            assert sorted(outcomes[nonce]).count(NonceOutcome.CONSUMED) == 1, nonce
        records = stores[0].audit_records()
        assert sorted(r.data["nonce"] for r in records if r.data) == nonces
        verify_chain(records)
    finally:
        for store in stores:
            store.close()
