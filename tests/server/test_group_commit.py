"""Group commit: callers queued together share one transaction, each returns only after it
committed, and a failed commit fails every caller in it (so none gets a token)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from server.errors import UnavailableError
from server.store import AuditEvent, NonceOutcome
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
