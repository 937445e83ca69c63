"""Erasure and purge leave nothing to recover: after ``devices erase`` or a retention purge,
the erased values appear in none of the SQLite files (``secure_delete``, WAL truncated), and
the chain still verifies because the erasure event covers the emptied records."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.datadir import init_data_dir
from server.store import AuditEvent, DeviceRecord
from server.store.sql import SqlStore, make_engine
from tests.server.support import server_cli

SECRET_HOST = "relay-7f3a9c.erasure-probe.example"
SECRET_ZONE = "Pacific/Chatham"


def _files_hold(data_dir: Path, needle: str) -> list[str]:
    return [p.name for p in data_dir.glob("envattest.db*") if needle.encode() in p.read_bytes()]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "verifier"
    init_data_dir(d, issuer="https://verifier.test")
    return d


def _history(d: Path) -> SqlStore:
    store = SqlStore(make_engine(f"sqlite:///{d / 'envattest.db'}"))
    for device in ("dev_gone", "dev_kept"):
        record = DeviceRecord(device, {"kty": "EC"}, f"jkt-{device}", "software", 1)
        store.add_device(record, AuditEvent("enroll", device, None, {}))
    for i in range(30):  # enough rows to span pages, plus an unrelated device
        signals = {"proxy.env": f"http://{SECRET_HOST}:{3000 + i}", "timezone.iana": SECRET_ZONE}
        store.append_audit(AuditEvent("attest", "dev_gone", "allow", {"signals": signals}))
        store.append_audit(AuditEvent("attest", "dev_kept", "allow", {"signals": {"n": i}}))
    return store


def test_erase_leaves_no_erased_value_in_the_database_files(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _history(data_dir)
    assert _files_hold(data_dir, SECRET_HOST)  # the probe can see data that is there
    run = server_cli(capsys, "devices", "erase", "--data-dir", str(data_dir), "dev_gone")
    assert run.code == 0, run.err
    assert _files_hold(data_dir, SECRET_HOST) == []
    assert _files_hold(data_dir, SECRET_ZONE) == []
    store.engine.dispose()
    run = server_cli(capsys, "audit", "checkpoint", "--data-dir", str(data_dir))
    run = server_cli(capsys, "audit", "verify", "--data-dir", str(data_dir))
    assert run.code == 0, run.err
    assert "(31 with data purged or erased" in run.out


def test_a_purge_scrubs_the_files_too(data_dir: Path) -> None:
    store = _history(data_dir)
    seqs = [r.seq for r in store.audit_records(device_id="dev_gone")]
    purged = store.purge_audit_data(seqs, audit=AuditEvent("admin.purge", None, None, {}))
    assert purged == 31  # the enrollment record and 30 attestations
    assert _files_hold(data_dir, SECRET_HOST) == []
    store.engine.dispose()


def test_without_secure_delete_the_probe_would_find_the_values(data_dir: Path) -> None:
    """The check above can fail: the same erase with secure_delete off leaves the bytes."""
    store = _history(data_dir)
    with store.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.engine.dispose()
    import sqlite3

    with sqlite3.connect(data_dir / "envattest.db") as db:
        db.execute("PRAGMA secure_delete=OFF")
        db.execute("UPDATE audit_log SET data = NULL WHERE device_id = 'dev_gone'")
    with sqlite3.connect(data_dir / "envattest.db") as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert _files_hold(data_dir, SECRET_HOST)
