"""A verifier behind a private CA: init needs --ca-file, says so, and works with it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.tlsfixtures import HttpsVerifierProcess, https_verifier
from tests.conftest import AgentCli


@pytest.fixture(scope="module")
def tls_verifier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsVerifierProcess]:
    server = https_verifier(tmp_path_factory.mktemp("tls")).start()
    try:
        yield server
    finally:
        server.stop()


def _init(agent_cli: AgentCli, server: HttpsVerifierProcess, *extra: str) -> tuple[int, str]:
    run = agent_cli(
        "init", "--server", server.url, "--enroll-token", server.enroll_token(),
        "--accept-manifest", server.manifest_hash(), "--key", "software", *extra,
    )  # fmt: skip
    return run.code, run.stderr


def test_init_without_ca_file_says_certificate_not_trusted_and_how_to_fix(
    tls_verifier: HttpsVerifierProcess, agent_cli: AgentCli
) -> None:
    code, stderr = _init(agent_cli, tls_verifier)
    assert code == 1
    assert "TLS certificate" in stderr
    assert "not trusted" in stderr
    assert "--ca-file" in stderr
    assert "Traceback" not in stderr
    assert stderr.count("\n") == 1
    assert not agent_cli.home.joinpath("agent.json").exists()


def test_init_with_ca_file_enrolls_stores_it_and_attests(
    tls_verifier: HttpsVerifierProcess, agent_cli: AgentCli
) -> None:
    code, stderr = _init(agent_cli, tls_verifier, "--ca-file", str(tls_verifier.ca.ca_cert))
    assert code == 0, stderr
    stored = json.loads(agent_cli.home.joinpath("agent.json").read_text())
    assert stored["ca_file"] == str(tls_verifier.ca.ca_cert)

    token = agent_cli("token")  # no --ca-file: taken from agent.json
    assert token.code == 0, token.stderr
    assert token.stdout.count(".") == 2

    doctor = json.loads(agent_cli("doctor", "--json").stdout)
    tls = next(c for c in doctor["checks"] if c["name"] == "tls")
    assert tls["status"] == "PASS"
    assert str(tls_verifier.ca.ca_cert) in tls["detail"]


def test_doctor_names_tls_trust_as_the_failure(
    tls_verifier: HttpsVerifierProcess, agent_cli: AgentCli, tmp_path: Path
) -> None:
    run = agent_cli("doctor", "--json", "--server", tls_verifier.url)
    assert run.code == 1
    checks = {c["name"]: c for c in json.loads(run.stdout)["checks"]}
    assert checks["server"]["status"] == "PASS"
    assert checks["tls"]["status"] == "FAIL"
    assert "--ca-file" in checks["tls"]["fix"]

    trusted = agent_cli(
        "doctor", "--json", "--server", tls_verifier.url, "--ca-file", str(tls_verifier.ca.ca_cert)
    )
    checks = {c["name"]: c for c in json.loads(trusted.stdout)["checks"]}
    assert checks["tls"]["status"] == "PASS"
