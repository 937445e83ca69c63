"""``envattest-server audit``: list, show, export for a SIEM, and verify catching tampering."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from server.audit import chain_hash
from tests.devices import TestDevice
from tests.server.support import access_token, enrolled_device, offline_copy, server_cli
from tests.servers import VerifierProcess


@pytest.fixture(scope="module")
def verifier(shared_verifier: VerifierProcess) -> VerifierProcess:
    """One live verifier for the module; tampering tests work on copies of its data."""
    return shared_verifier


@pytest.fixture(scope="module")
def history(verifier: VerifierProcess, tmp_path_factory: pytest.TempPathFactory) -> TestDevice:
    """An enrolled device with two allowed and one rejected attestation."""
    device = enrolled_device(verifier, tmp_path_factory.mktemp("dev") / "key.pem")
    access_token(device)
    evidence = device.evidence()
    assert device.attest(evidence).status_code == 200
    assert device.attest(evidence).status_code == 401  # replay: a reject record
    return device


def _db(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(data_dir / "envattest.db")


def test_list_filters_by_device_decision_and_time(
    verifier: VerifierProcess, history: TestDevice, capsys: pytest.CaptureFixture[str]
) -> None:
    d = str(verifier.data_dir)
    run = server_cli(capsys, "audit", "list", "--data-dir", d, "--json")
    events = [r["event"] for r in json.loads(run.out)]
    assert events[:1] == ["admin.enroll-token.create"]
    assert events.count("attest") == 2
    assert "attest.rejected" in events

    run = server_cli(capsys, "audit", "list", "--data-dir", d, "--decision", "reject", "--json")
    rejected = json.loads(run.out)
    assert [r["event"] for r in rejected] == ["attest.rejected"]
    assert rejected[0]["data"]["reason"] == "nonce already-used"

    run = server_cli(capsys, "audit", "list", "--data-dir", d, "--device", history.device_id)
    assert run.code == 0
    lines = run.out.strip().splitlines()[1:]
    assert len(lines) == 4
    assert all(history.device_id in line for line in lines)

    run = server_cli(capsys, "audit", "list", "--data-dir", d, "--since", "2999-01-01T00:00:00Z")
    assert run.out.strip().splitlines()[1:] == []
    run = server_cli(capsys, "audit", "list", "--data-dir", d, "--since", "yesterday")
    assert run.code == 2
    assert "ISO-8601" in run.err


def test_show_prints_one_record_with_hashes(
    verifier: VerifierProcess, history: TestDevice, capsys: pytest.CaptureFixture[str]
) -> None:
    run = server_cli(capsys, "audit", "show", "--data-dir", str(verifier.data_dir), "3")
    record = json.loads(run.out)
    assert record["seq"] == 3
    assert len(record["hash"]) == 64
    assert record["prev_hash"]
    run = server_cli(capsys, "audit", "show", "--data-dir", str(verifier.data_dir), "999")
    assert run.code == 2
    assert "no audit record 999" in run.err


def test_export_writes_one_json_record_a_line_that_rechains(
    verifier: VerifierProcess, history: TestDevice, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "audit.jsonl"
    d = str(verifier.data_dir)
    run = server_cli(capsys, "audit", "export", "--data-dir", d, "--jsonl", "--output", str(out))
    assert run.code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    prev = "0" * 64
    for r in records:  # a SIEM can re-verify the chain from the export alone
        fields = ("seq", "at", "event", "device_id", "decision", "data_sha256")
        assert r["hash"] == chain_hash(prev_hash=prev, **{k: r[k] for k in fields})
        prev = r["hash"]
    stdout = server_cli(capsys, "audit", "export", "--data-dir", d, "--jsonl")
    assert stdout.out == out.read_text()


def test_verify_passes_then_names_an_altered_record(
    verifier: VerifierProcess, history: TestDevice, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    run = server_cli(capsys, "audit", "verify", "--data-dir", str(verifier.data_dir))
    assert run.code == 0, run.err
    assert "audit chain verified" in run.out
    assert "head hash: " in run.out
    copy = offline_copy(verifier, tmp_path / "copy")
    d = str(copy)
    with _db(copy) as db:
        db.execute("UPDATE audit_log SET decision = 'allow' WHERE event = 'attest.rejected'")
        seq = db.execute("SELECT seq FROM audit_log WHERE event = 'attest.rejected'").fetchone()[0]
    run = server_cli(capsys, "audit", "verify", "--data-dir", d)
    assert run.code == 1
    assert f"BROKEN at record {seq}" in run.err
    assert "hash mismatch" in run.err


def test_verify_names_altered_data_and_a_removed_record(
    verifier: VerifierProcess, history: TestDevice, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    copy = offline_copy(verifier, tmp_path / "copy")
    d = str(copy)
    with _db(copy) as db:
        db.execute("UPDATE audit_log SET data = replace(data, 'software', 'tpm2') WHERE seq = 3")
    run = server_cli(capsys, "audit", "verify", "--data-dir", d)
    assert run.code == 1
    assert "record 3" in run.err
    assert "data was altered" in run.err
    with _db(copy) as db:
        db.execute("DELETE FROM audit_log WHERE seq = 3")
    run = server_cli(capsys, "audit", "verify", "--data-dir", d)
    assert run.code == 1
    assert "record 3" in run.err
    assert "missing" in run.err


def test_verify_still_passes_after_erasure(
    verifier: VerifierProcess, history: TestDevice, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    d = str(offline_copy(verifier, tmp_path / "copy"))
    run = server_cli(capsys, "devices", "erase", "--data-dir", d, history.device_id)
    assert run.code == 0
    assert "erased" in run.out
    run = server_cli(capsys, "audit", "verify", "--data-dir", d)
    assert run.code == 0, run.err
    assert "with data purged" in run.out
    assert "(0 with" not in run.out
