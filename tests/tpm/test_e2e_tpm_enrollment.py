"""End to end with a software TPM: the real agent CLI enrolls with --key tpm2 against a real
verifier that trusts the swtpm's local EK CA, attests, and gets a token whose key_class is tpm2.
A policy requiring tpm2 denies a software-key device with a reason that says so."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import AgentCli
from tests.servers import VerifierProcess, init_verifier
from tests.tpm.swtpm import SoftwareTpm

REQUIRE_TPM2 = """
[policy]
version = "test-require-tpm2"

[rules.key_class]
allowed = ["tpm2"]

[rules.clock_skew]
max_skew_s = 300

[rules.required_fields]
"""


@pytest.fixture
def tpm_verifier(tmp_path: Path, swtpm: SoftwareTpm) -> Iterator[VerifierProcess]:
    server = init_verifier(tmp_path / "verifier")
    roots = tmp_path / "ek-roots"
    roots.mkdir()
    shutil.copy(swtpm.ca.root_pem, roots / "root.pem")
    shutil.copy(swtpm.ca.issuer_pem, roots / "issuer.pem")
    (server.data_dir / "policy.toml").write_text(REQUIRE_TPM2)
    server.start("--tpm-roots", str(roots))
    try:
        yield server
    finally:
        server.stop()


def _init(agent_cli: AgentCli, server: VerifierProcess, *args: str, **env: str) -> None:
    manifest_hash = httpx.get(f"{server.url}/v1/manifest").headers["ETag"].strip('"')
    run = agent_cli(
        "init", "--server", server.url, "--enroll-token", server.enroll_token(),
        "--accept-manifest", manifest_hash, *args, **env,
    )  # fmt: skip
    assert run.code == 0, run.stderr


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


def test_tpm2_enrollment_attest_and_token(
    tpm_verifier: VerifierProcess, agent_cli: AgentCli, swtpm: SoftwareTpm
) -> None:
    _init(agent_cli, tpm_verifier, "--key", "tpm2", "--tcti", swtpm.tcti, TSS2_LOG="all+none")
    status = json.loads(agent_cli("status", "--json").stdout)
    assert status["key_provider"] == "tpm2"
    assert status["key_class"] == "tpm2"

    attest = agent_cli("attest", "--json", TSS2_LOG="all+none")
    assert attest.code == 0, attest.stderr + attest.stdout
    token = json.loads(attest.stdout)["access_token"]
    assert _claims(token)["key_class"] == "tpm2"


def test_policy_requiring_tpm2_denies_a_software_key(
    tpm_verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    _init(agent_cli, tpm_verifier, "--key", "software")
    attest = agent_cli("attest", "--json")
    assert attest.code == 3
    reasons = json.loads(attest.stdout)["reasons"]
    assert any("software" in r and "tpm2" in r for r in reasons), reasons


def test_auto_without_tpm_needs_explicit_fallback(
    tpm_verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    manifest_hash = httpx.get(f"{tpm_verifier.url}/v1/manifest").headers["ETag"].strip('"')
    run = agent_cli(
        "init", "--server", tpm_verifier.url, "--enroll-token", tpm_verifier.enroll_token(),
        "--accept-manifest", manifest_hash, "--key", "auto",
        "--tcti", "swtpm:host=127.0.0.1,port=9",
        TSS2_LOG="all+none",
    )  # fmt: skip
    assert run.code == 1
    assert "--allow-software-fallback" in run.stderr
    assert not agent_cli.home.joinpath("agent.json").exists()
