"""Retention: ``purge`` nulls the data of attestation records past the manifest's promise
(per record: the longest retention of the fields it holds), keeps the rows and a chain that
verifies, and deletes expired nonces."""

from __future__ import annotations

from pathlib import Path

import pytest

from attest.manifest import Manifest, parse_manifest, render_manifest
from server.audit import verify_chain
from server.nonces import PURGE_MARGIN_S
from server.retention import DAY_S, purge_expired, retention_days
from server.store import AuditEvent, AuditRecord
from server.store.migrate import upgrade
from server.store.sql import SqlStore, make_engine

NOW = 1_800_000_000


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


def _manifest() -> Manifest:
    def entry(field_id: str, days: int) -> dict[str, object]:
        return {"id": field_id, "purpose": "test", "retention_days": days, "mode": "report"}

    return parse_manifest(
        render_manifest("test", [entry("timezone.iana", 10), entry("proxy.env", 60)])
    )


@pytest.fixture
def store(tmp_path: Path) -> tuple[SqlStore, Clock]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    clock = Clock()
    return SqlStore(engine, clock=clock), clock


def _attest(store: SqlStore, clock: Clock, days_ago: int, *fields: str) -> AuditRecord:
    clock.now = NOW - days_ago * DAY_S
    data = {"signals": dict.fromkeys(fields, "x"), "policy_version": "p"}
    record = store.append_audit(AuditEvent("attest", "dev_1", "allow", data))
    clock.now = NOW
    return record


def test_retention_is_the_longest_of_the_fields_held() -> None:
    manifest = _manifest()

    def record(data: dict[str, object] | None) -> AuditRecord:
        return AuditRecord(1, 0, "attest", None, "allow", data, "", "", "")

    assert retention_days(record({"signals": {"timezone.iana": "Etc/UTC"}}), manifest) == 10
    both = {"signals": {"timezone.iana": "Etc/UTC", "proxy.env": []}}
    assert retention_days(record(both), manifest) == 60
    assert retention_days(record({"step": "nonce"}), manifest) == 60  # no signals: the max


def test_purge_nulls_data_past_retention_and_the_chain_still_verifies(
    store: tuple[SqlStore, Clock],
) -> None:
    db, clock = store
    tz_old = _attest(db, clock, 40, "timezone.iana")  # 40 > 10 days: purge
    both_old = _attest(db, clock, 40, "timezone.iana", "proxy.env")  # 40 < 60: keep
    proxy_older = _attest(db, clock, 70, "proxy.env")  # 70 > 60: purge
    tz_new = _attest(db, clock, 5, "timezone.iana")  # keep
    clock.now = NOW - 400 * DAY_S
    enroll = db.append_audit(AuditEvent("enroll", "dev_1", "allow", {"key_class": "software"}))
    clock.now = NOW
    stale = NOW - PURGE_MARGIN_S - 10  # expired longer ago than the replica-clock margin
    db.spend_nonce("old", binding="device:dev_1", expires_at=stale, now=stale - 60, audit=None)
    db.spend_nonce("live", binding="device:dev_1", expires_at=NOW + 100, now=NOW, audit=None)

    dry = purge_expired(db, _manifest(), now=NOW, dry_run=True)
    assert (dry.records_purged, dry.nonces_deleted) == (2, 0)
    assert all(r.data is not None for r in db.audit_records())

    report = purge_expired(db, _manifest(), now=NOW)
    assert (report.records_purged, report.nonces_deleted) == (2, 1)
    held = {r.seq: r for r in db.audit_records()}
    assert held[tz_old.seq].data is None
    assert held[proxy_older.seq].data is None
    assert held[both_old.seq].data is not None
    assert held[tz_new.seq].data is not None
    assert held[enroll.seq].data is not None  # not an attestation record
    assert held[tz_old.seq].decision == "allow"  # the decision row stays
    chain = verify_chain(db.audit_records())
    assert chain.purged == 2
    assert db.audit_records()[-1].event == "admin.purge"
    again = {"binding": "device:dev_1", "expires_at": NOW + 100, "now": NOW, "audit": None}
    assert db.spend_nonce("live", **again)[0].value == "already-used"  # still held as spent
    assert db.spend_nonce("old", **again)[0].value == "consumed"  # purged


def test_purge_cli_is_audited(shared_verifier: object, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.server.support import server_cli
    from tests.servers import VerifierProcess

    assert isinstance(shared_verifier, VerifierProcess)
    d = str(shared_verifier.data_dir)
    run = server_cli(capsys, "purge", "--data-dir", d, "--dry-run")
    assert run.code == 0
    assert "would purge the data of 0" in run.out
    run = server_cli(capsys, "purge", "--data-dir", d)
    assert run.code == 0
    assert "purged the data of 0" in run.out
    listed = server_cli(capsys, "audit", "list", "--data-dir", d).out
    assert listed.count("admin.purge") == 1
