"""The SQLite writer gate: one committer at a time per database file, a waiter woken on release."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import create_engine

from server.store.engine import WriterGate, writer_gate


def test_a_second_holder_waits_until_the_first_releases(tmp_path: Path) -> None:
    database = str(tmp_path / "envattest.db")
    first, second = WriterGate(database), WriterGate(database)  # two open files: two processes
    events: list[str] = []
    try:
        with first.held():
            waiter = threading.Thread(target=lambda: _hold(second, events))
            waiter.start()
            time.sleep(0.2)
            assert events == []  # still blocked on the flock
            events.append("first released")
        waiter.join(timeout=5)
        assert events == ["first released", "second held"]
    finally:
        first.close()
        second.close()


def _hold(gate: WriterGate, events: list[str]) -> None:
    with gate.held():
        events.append("second held")


def test_only_sqlite_files_get_a_gate(tmp_path: Path) -> None:
    gate = writer_gate(create_engine(f"sqlite:///{tmp_path / 'envattest.db'}"))
    assert gate is not None
    gate.close()
    assert (tmp_path / "envattest.db-writer.lock").exists()
    assert writer_gate(create_engine("sqlite://")) is None  # in memory
    assert writer_gate(create_engine("postgresql+psycopg://u@127.0.0.1/db")) is None
