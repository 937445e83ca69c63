"""``envattest doctor``: one PASS/FAIL line per link, a fix for each failure, sends no signals."""

from __future__ import annotations

import json

import httpx
import pytest

from agent.doctor import describe_proxy
from tests.conftest import AgentCli
from tests.servers import VerifierProcess


def _enroll(agent_cli: AgentCli, verifier: VerifierProcess) -> str:
    manifest_hash = httpx.get(f"{verifier.url}/v1/manifest").headers["ETag"].strip('"')
    run = agent_cli(
        "init", "--server", verifier.url, "--enroll-token", verifier.enroll_token(),
        "--accept-manifest", manifest_hash, "--key", "software",
    )  # fmt: skip
    assert run.code == 0, run.stderr
    return manifest_hash


def _checks(run_stdout: str) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in json.loads(run_stdout)["checks"]}


def _sent(agent_cli: AgentCli) -> int:
    log = agent_cli.home / "submissions.jsonl"
    lines = log.read_text().splitlines() if log.exists() else []
    return sum(json.loads(line)["event"] == "sent" for line in lines)


def test_healthy_enrollment_passes_every_check_without_sending_signals(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    _enroll(agent_cli, verifier)
    run = agent_cli("doctor", "--json")
    assert run.code == 0, run.stdout + run.stderr
    checks = _checks(run.stdout)
    assert list(checks) == ["enrollment", "server", "tls", "consent", "key", "token"]
    assert {n: c["status"] for n, c in checks.items()} == {
        "enrollment": "PASS", "server": "PASS", "tls": "SKIP",
        "consent": "PASS", "key": "PASS", "token": "PASS",
    }  # fmt: skip
    assert "dry attestation ok" in checks["token"]["detail"]
    assert _sent(agent_cli) == 0  # doctor never sends evidence

    assert agent_cli("attest").code == 0
    text = agent_cli("doctor")
    assert text.code == 0
    lines = text.stdout.splitlines()
    assert len(lines) == 6
    assert all(line.startswith(("PASS", "SKIP")) for line in lines)
    assert "cached token valid for" in lines[-1]


def test_stale_consent_fails_with_the_command_that_fixes_it(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    _enroll(agent_cli, verifier)
    consent_path = agent_cli.home / "consent.json"
    consent = json.loads(consent_path.read_text())
    consent["manifest_sha256"] = "ab" * 32
    consent_path.write_text(json.dumps(consent))

    run = agent_cli("doctor")
    assert run.code == 1
    consent_line = next(line for line in run.stdout.splitlines() if " consent " in line)
    assert consent_line.startswith("FAIL")
    assert "abababababababab" in consent_line
    assert "-> run 'envattest consent'" in consent_line
    token_line = run.stdout.splitlines()[-1]
    assert token_line.startswith("FAIL")


def test_unreachable_server_and_missing_key_each_say_what_to_do(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    _enroll(agent_cli, verifier)
    (agent_cli.home / "device-key.pem").unlink()
    verifier.stop()
    checks = _checks(agent_cli("doctor", "--json").stdout)
    assert checks["server"]["status"] == "FAIL"
    assert "HTTPS_PROXY" in checks["server"]["fix"]
    assert checks["key"]["status"] == "FAIL"
    assert checks["key"]["fix"]
    assert checks["token"]["status"] == "FAIL"


def test_before_init_doctor_checks_a_given_server(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    run = agent_cli("doctor", "--json", "--server", verifier.url)
    assert run.code == 1
    checks = _checks(run.stdout)
    assert checks["enrollment"]["status"] == "FAIL"
    assert "envattest init" in checks["enrollment"]["fix"]
    assert checks["server"]["status"] == "PASS"
    assert {checks[n]["status"] for n in ("consent", "key", "token")} == {"SKIP"}


def test_server_check_goes_through_the_environment_proxy(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    _enroll(agent_cli, verifier)
    # a proxy that refuses connections: reaching the verifier must fail, proving it is used
    run = agent_cli("doctor", "--json", HTTP_PROXY="http://user:secret@127.0.0.1:9")
    server = _checks(run.stdout)["server"]
    assert server["status"] == "FAIL"
    assert "via proxy http://127.0.0.1:9" in server["detail"]
    assert "secret" not in run.stdout


BYPASSED = "direct (NO_PROXY)"


@pytest.mark.parametrize(
    ("url", "env", "expected"),
    [
        ("https://v.example", {}, "direct"),
        ("https://v.example", {"HTTPS_PROXY": "http://u:p@proxy:3128"}, "via proxy http://proxy:3128"),
        ("https://v.example", {"https_proxy": "proxy:8080"}, "via proxy http://proxy:8080"),
        ("http://v.example", {"ALL_PROXY": "socks5://s:1080"}, "via proxy socks5://s:1080"),
        ("https://v.example", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": ".example"}, BYPASSED),
        ("https://v.example", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"}, BYPASSED),
        ("https://v.example", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "other.test"}, "via proxy http://p:1"),
    ],
)  # fmt: skip
def test_describe_proxy(url: str, env: dict[str, str], expected: str) -> None:
    assert describe_proxy(url, env) == expected
