"""Group commit: callers queued together share one transaction, each returns only after it
committed, and a failed commit fails every caller in it (so none gets a token)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from server.errors import UnavailableError
from server.store import AuditEvent, AuditRecord, NonceOutcome
from server.store.groupcommit import GroupCommitter, Pending
from server.store.migrate import upgrade
from server.store.sql import SqlStore, make_engine


def test_queued_requests_share_a_batch_and_wait_for_it() -> None:
    batches: list[list[int]] = []
    gate = threading.Event()

    def commit(batch: list[Pending[int]]) -> None:
        gate.wait(5)  # the first commit is "slow": the rest queue behind it
        batches.append([p.request for p in batch])

    committer = GroupCommitter(commit)
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(committer.submit, i) for i in range(8)]
        time.sleep(0.3)
        assert not any(f.done() for f in futures)  # nobody returns before its commit
        gate.set()
        assert sorted(f.result().request for f in futures) == list(range(8))
    committer.close()
    assert len(batches) < 8  # at least two requests shared a transaction
    assert sorted(x for b in batches for x in b) == list(range(8))


def test_a_failed_commit_fails_every_caller_in_it() -> None:
    def commit(batch: list[Pending[int]]) -> None:
        raise UnavailableError("database is locked", audit_detail="test", retry_after_s=1)

    committer = GroupCommitter(commit)
    with pytest.raises(UnavailableError, match="locked"):
        committer.submit(1)
    committer.close()


def test_settle_through_the_writer_is_single_use_and_chained(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    store = SqlStore(engine)
    event = AuditEvent("attest", "dev_a", "allow", {"n": 1})

    def settle(_: int) -> NonceOutcome:
        return store.spend_nonce(
            "n1", binding="dev_a", expires_at=4_000_000_000, now=1, audit=event
        )[0]

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(settle, range(16)))
    assert outcomes.count(NonceOutcome.CONSUMED) == 1
    assert outcomes.count(NonceOutcome.ALREADY_USED) == 15
    assert [r.event for r in store.audit_records()] == ["attest"]  # exactly one record
    store.close()


def test_awaiting_callers_share_a_batch_and_wake_only_after_it() -> None:
    batches: list[list[int]] = []
    gate = threading.Event()

    def commit(batch: list[Pending[int]]) -> None:
        gate.wait(5)
        batches.append([p.request for p in batch])

    committer = GroupCommitter(commit)

    async def scenario() -> list[int]:
        tasks = [asyncio.ensure_future(committer.submit_async(i)) for i in range(8)]
        await asyncio.sleep(0.3)
        assert not any(t.done() for t in tasks)  # the loop runs on; nobody is answered yet
        gate.set()
        done = await asyncio.gather(*tasks)
        return sorted(p.request for p in done)

    assert asyncio.run(scenario()) == list(range(8))
    committer.close()
    assert len(batches) < 8  # requests awaiting on the loop shared a transaction
    assert sorted(x for b in batches for x in b) == list(range(8))


def test_a_failed_commit_fails_every_awaiting_caller_in_it() -> None:
    gate = threading.Event()

    def commit(batch: list[Pending[int]]) -> None:
        gate.wait(5)
        raise UnavailableError("database is locked", audit_detail="test", retry_after_s=1)

    committer = GroupCommitter(commit)

    async def scenario() -> list[BaseException | Pending[int]]:
        tasks = [committer.submit_async(i) for i in range(4)]
        gate.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    outcomes = asyncio.run(scenario())
    committer.close()
    assert all(isinstance(o, UnavailableError) for o in outcomes), outcomes


def test_async_spends_are_single_use_and_each_returns_its_own_record(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    store = SqlStore(engine)

    async def spend(nonce: str) -> tuple[NonceOutcome, AuditRecord | None]:
        event = AuditEvent("attest", "dev_a", "allow", {"nonce": nonce})
        return await store.spend_nonce_async(
            nonce, binding="dev_a", expires_at=4_000_000_000, now=1, audit=event
        )

    async def scenario() -> list[tuple[NonceOutcome, AuditRecord | None]]:
        return await asyncio.gather(*(spend(f"n{i % 4}") for i in range(16)))

    outcomes = asyncio.run(scenario())
    consumed = [record for outcome, record in outcomes if outcome is NonceOutcome.CONSUMED]
    assert len(consumed) == 4  # one per nonce
    assert sorted(r.data["nonce"] for r in consumed if r and r.data) == ["n0", "n1", "n2", "n3"]
    stored = store.audit_records()
    assert [r.seq for r in stored] == sorted(r.seq for r in consumed if r)  # durable, as answered
    store.close()
