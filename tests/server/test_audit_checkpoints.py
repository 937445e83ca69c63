"""``audit verify`` against signed checkpoints: truncation, a rewrite by someone who can
write the database but lacks the checkpoint key, forged checkpoints, and emptied records
outside a purge or erasure. Each test names the check that refused."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.audit import GENESIS_HASH, chain_hash
from server.audit.checkpoints import CheckpointSigner
from server.datadir import init_data_dir
from server.store import AuditEvent
from server.store.sql import SqlStore, make_engine
from tests.server.support import CliRun, server_cli

SIGNALS = {"timezone.iana": "Europe/Lisbon", "proxy.env": "http://relay.example:3128"}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory with four records: two attestations of dev_a, one of dev_b, admin."""
    d = tmp_path / "verifier"
    init_data_dir(d, issuer="https://verifier.test")
    store = _store(d)
    for device in ("dev_a", "dev_b", "dev_a"):
        store.append_audit(AuditEvent("attest", device, "allow", {"signals": SIGNALS}))
    store.append_audit(AuditEvent("admin.keys.rotate", None, None, {"active": "k2"}))
    store.engine.dispose()
    return d


def _store(d: Path) -> SqlStore:
    return SqlStore(make_engine(f"sqlite:///{d / 'envattest.db'}"))


def _cli(capsys: pytest.CaptureFixture[str], d: Path, *args: str) -> CliRun:
    return server_cli(capsys, "audit", *args, "--data-dir", str(d))


def _checkpoint(capsys: pytest.CaptureFixture[str], d: Path) -> None:
    run = _cli(capsys, d, "checkpoint")
    assert run.code == 0, run.err


def _sql(d: Path, statement: str, *params: object) -> None:
    with sqlite3.connect(d / "envattest.db") as db:
        db.execute(statement, params)


def _rewrite_chain(d: Path) -> None:
    """What an insider with write access does: change a record, then recompute every hash
    after it so the chain itself verifies again."""
    with sqlite3.connect(d / "envattest.db") as db:
        db.execute("UPDATE audit_log SET decision = 'deny' WHERE seq = 2")
        rows = db.execute(
            "SELECT seq, at, event, device_id, decision, data_sha256 FROM audit_log ORDER BY seq"
        ).fetchall()
        prev = GENESIS_HASH
        for seq, at, event, device, decision, digest in rows:
            new = chain_hash(
                prev_hash=prev, seq=seq, at=at, event=event, device_id=device,
                decision=decision, data_sha256=digest,
            )  # fmt: skip
            db.execute(
                "UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, new, seq)
            )
            prev = new


def test_checkpointed_log_verifies_and_reports_the_tail(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _checkpoint(capsys, data_dir)
    run = _cli(capsys, data_dir, "verify")
    assert run.code == 0, run.err
    assert "audit chain verified: 4 records" in run.out
    assert "signed checkpoints: 1," in run.out
    assert "covers 4 records (0 written since)" in run.out


def test_a_log_without_any_checkpoint_is_not_proven(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    CheckpointSigner.load(data_dir / "keys" / "audit-checkpoint.pem", create=True)
    run = _cli(capsys, data_dir, "verify")
    assert run.code == 1
    assert "NOT PROVEN: no signed checkpoint covers the log" in run.err


def test_truncation_after_the_last_checkpoint_is_named(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _checkpoint(capsys, data_dir)
    _sql(data_dir, "DELETE FROM audit_log WHERE seq >= 4")
    run = _cli(capsys, data_dir, "verify")
    assert run.code == 1
    assert "BROKEN at record 4" in run.err
    assert "covers 4 records, the log has 3 (truncated)" in run.err


def test_truncation_is_caught_even_when_the_checkpoint_rows_are_deleted_too(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _checkpoint(capsys, data_dir)
    _sql(data_dir, "DELETE FROM audit_log WHERE seq >= 4")
    _sql(data_dir, "DELETE FROM audit_checkpoints")
    run = _cli(capsys, data_dir, "verify")  # the witness file outside the database remains
    assert run.code == 1
    assert "(truncated)" in run.err


def test_a_rewritten_chain_no_longer_matches_the_signed_head(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _checkpoint(capsys, data_dir)
    _rewrite_chain(data_dir)
    run = _cli(capsys, data_dir, "verify")
    assert run.code == 1
    assert "BROKEN at record 4: audit record 4: head no longer matches the checkpoint" in run.err


def test_a_rewrite_with_a_checkpoint_signed_by_another_key_is_refused(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _checkpoint(capsys, data_dir)
    _rewrite_chain(data_dir)
    with sqlite3.connect(data_dir / "envattest.db") as db:
        count, head = db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC").fetchone()
    forged = CheckpointSigner(Ed25519PrivateKey.generate()).sign(count=count, head_hash=head, at=1)
    _sql(data_dir, "DELETE FROM audit_checkpoints")
    (data_dir / "audit-checkpoint.json").unlink()
    _sql(
        data_dir,
        "INSERT INTO audit_checkpoints (count, head_hash, at, key_id, signature)"
        " VALUES (?, ?, ?, ?, ?)",
        forged.count, forged.head_hash, forged.at, forged.key_id, forged.signature,
    )  # fmt: skip
    run = _cli(capsys, data_dir, "verify")
    assert run.code == 1
    assert "NOT PROVEN" in run.err
    assert "not by the checkpoint key" in run.err


def test_an_altered_checkpoint_signature_does_not_verify(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _checkpoint(capsys, data_dir)
    _sql(data_dir, "UPDATE audit_checkpoints SET at = at + 1")
    run = _cli(capsys, data_dir, "verify")
    assert run.code == 1
    assert "signature does not verify" in run.err


def test_verify_with_an_auditors_public_key(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _cli(capsys, data_dir, "checkpoint", "--print-public-key")
    pem = run.out[run.out.index("-----BEGIN") :]
    (tmp_path / "auditor.pem").write_text(pem)
    run = _cli(capsys, data_dir, "verify", "--public-key", str(tmp_path / "auditor.pem"))
    assert run.code == 0, run.err
    other = CheckpointSigner(Ed25519PrivateKey.generate())
    from server.audit.checkpoints import public_key_pem

    (tmp_path / "other.pem").write_text(public_key_pem(other.public))
    run = _cli(capsys, data_dir, "verify", "--public-key", str(tmp_path / "other.pem"))
    assert run.code == 1
    assert "not by the checkpoint key" in run.err


def test_emptying_a_record_outside_a_purge_fails(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _checkpoint(capsys, data_dir)
    _sql(data_dir, "UPDATE audit_log SET data = NULL WHERE seq = 2")
    run = _cli(capsys, data_dir, "verify")
    assert run.code == 1
    assert "BROKEN at record 2" in run.err
    assert "emptied outside a purge or erasure" in run.err


def test_purge_and_erasure_events_cover_exactly_what_they_emptied(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(data_dir)
    store.purge_audit_data([1], audit=AuditEvent("admin.purge", None, None, {"trigger": "test"}))
    store.erase_device("dev_b", now=1, audit=AuditEvent("admin.device.erase", "dev_b", None, {}))
    store.engine.dispose()
    _checkpoint(capsys, data_dir)
    run = _cli(capsys, data_dir, "verify")
    assert run.code == 0, run.err
    assert "(2 with data purged or erased" in run.out
    # record 3 (dev_a) is covered by neither: emptying it is tampering
    _sql(data_dir, "UPDATE audit_log SET data = NULL WHERE seq = 3")
    run = _cli(capsys, data_dir, "verify")
    assert run.code == 1
    assert "BROKEN at record 3" in run.err


def test_a_purge_event_cannot_cover_records_written_after_it(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(data_dir)
    store.purge_audit_data([], audit=AuditEvent("admin.purge", None, None, {}))  # seq 5
    store.append_audit(AuditEvent("attest", "dev_a", "allow", {"signals": SIGNALS}))  # seq 6
    store.engine.dispose()
    _checkpoint(capsys, data_dir)
    with sqlite3.connect(data_dir / "envattest.db") as db:
        # an insider edits the purge's data to claim record 6 (and rechains from there)
        data = json.dumps({"covers": {"seq_ranges": [[6, 6]]}}, separators=(",", ":"))
        db.execute("UPDATE audit_log SET data = ? WHERE seq = 5", (data,))
        db.execute("UPDATE audit_log SET data = NULL WHERE seq = 6")
    run = _cli(capsys, data_dir, "verify")
    assert run.code == 1
    assert "BROKEN at record 5" in run.err  # its digest no longer matches its data


def test_the_checkpoint_key_can_live_outside_the_data_directory(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "hsm-mount" / "checkpoint.pem"
    config = data_dir / "server.toml"
    config.write_text(config.read_text() + f'audit_checkpoint_key = "{elsewhere}"\n')
    _checkpoint(capsys, data_dir)
    assert elsewhere.exists()
    run = _cli(capsys, data_dir, "verify")
    assert run.code == 0, run.err
    # the data directory's own key did not sign it: verifying with that one fails
    run = _cli(
        capsys, data_dir, "verify", "--public-key", str(data_dir / "keys/audit-checkpoint.pem")
    )
    assert run.code == 1
    assert "not by the checkpoint key" in run.err
