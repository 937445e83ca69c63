"""Consent end to end: subsets, a changed manifest, revocation, erasure."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from attest.manifest import parse_manifest
from tests.conftest import AgentCli
from tests.servers import VerifierProcess

REPORT_ONLY = ("timezone.dst", "timezone.source", "proxy.tunnels", "proxy.no_proxy")


def _hash(verifier: VerifierProcess) -> str:
    return httpx.get(f"{verifier.url}/v1/manifest").headers["ETag"].strip('"')


def _init(agent_cli: AgentCli, verifier: VerifierProcess, *extra: str) -> None:
    run = agent_cli(
        "init", "--server", verifier.url, "--enroll-token", verifier.enroll_token(),
        "--accept-manifest", _hash(verifier), "--key", "software", *extra,
    )  # fmt: skip
    assert run.code == 0, run.stderr


def test_only_the_consented_subset_is_collected_and_sent(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    _init(agent_cli, verifier, "--exclude", ",".join(REPORT_ONLY))
    shown = json.loads(agent_cli("show", "--json").stdout)
    manifest = parse_manifest(httpx.get(f"{verifier.url}/v1/manifest").content)
    expected = set(manifest.field_ids) - set(REPORT_ONLY)
    assert set(shown["consent"]["fields"]) == expected
    assert set(shown["signals"]) == expected

    assert agent_cli("attest").code == 0
    sent = [e for e in json.loads(agent_cli("log", "--json").stdout) if e["event"] == "sent"]
    assert len(sent) == 1
    assert set(sent[0]["claims"]["signals"]) == expected
    held = json.loads(agent_cli("whoami", "--json").stdout)
    attested = [r for r in held["records"] if r["event"] == "attest"]
    assert set(attested[0]["data"]["signals"]) == expected


def test_withholding_a_required_field_is_denied_with_the_reason(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    _init(agent_cli, verifier, "--exclude", "baseurl.env")
    run = agent_cli("attest")
    assert run.code == 3
    assert "baseurl.env" in run.stdout


def test_changed_manifest_refuses_then_reprompts(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    _init(agent_cli, verifier)
    assert agent_cli("attest").code == 0
    manifest_path = verifier.data_dir / "manifest.json"
    doc = json.loads(manifest_path.read_text())
    doc["fields"][0]["retention_days"] = 90
    manifest_path.write_text(json.dumps(doc, indent=2))
    verifier.stop()
    verifier.start()

    refused = agent_cli("attest")
    assert refused.code == 4
    assert "consent required" in refused.stderr
    assert "run 'envattest consent'" in refused.stderr
    assert agent_cli("token").code == 4  # no stale token is served after a refusal

    regrant = agent_cli("consent", "--accept-manifest", _hash(verifier))
    assert regrant.code == 0, regrant.stderr
    assert "kept 90 days" in regrant.stderr  # the new terms were shown
    assert agent_cli("attest").code == 0


def test_revoked_consent_sends_nothing(verifier: VerifierProcess, agent_cli: AgentCli) -> None:
    _init(agent_cli, verifier)
    assert agent_cli("consent", "--revoke").code == 0
    before = agent_cli("log", "--json").stdout
    run = agent_cli("attest")
    assert run.code == 4
    assert "revoked" in run.stderr
    assert agent_cli("log", "--json").stdout == before  # nothing was sent
    assert agent_cli("show").code == 4


def test_forget_erases_server_history_and_local_state(
    verifier: VerifierProcess, agent_cli: AgentCli, tmp_path: Path
) -> None:
    _init(agent_cli, verifier)
    assert agent_cli("attest").code == 0
    device_id = json.loads(agent_cli("status", "--json").stdout)["device_id"]
    run = agent_cli("forget")
    assert run.code == 0, run.stderr
    assert not agent_cli.home.exists()

    from server.config import load_config
    from server.store.sql import SqlStore, make_engine

    store = SqlStore(make_engine(load_config(verifier.data_dir).resolved_database_url))
    records = store.audit_records(device_id=device_id)
    assert records[-1].event == "device.erased"
    assert all(r.data is None for r in records[:-1])  # signal history erased
    from server.audit import verify_chain

    verify_chain(store.audit_records())  # and the chain still verifies
    device = store.get_device(device_id)
    assert device is not None
    assert not device.active
    assert httpx.get(f"{verifier.url}/healthz").status_code == 200
