"""The agent as a person meets it: revocation, forget, EOF, closed pipes, bad homes, SOCKS,
and every ``--key`` provider reaching its real code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests._support import free_port, need_tool
from tests.conftest import AgentCli
from tests.servers import REPO, VerifierProcess, clean_env, run_server_cli

FAKE_SE_HELPER = REPO / "tests" / "fixtures" / "fake_se_helper.py"
RECOVERY = "envattest forget --local"
# pproxy prefers uvloop, whose get_event_loop() no longer creates a loop: run it on asyncio
PPROXY_MAIN = "import sys; sys.modules['uvloop'] = None; from pproxy.server import main; main()"


def _manifest_hash(verifier: VerifierProcess) -> str:
    return httpx.get(f"{verifier.url}/v1/manifest").headers["ETag"].strip('"')


def _enroll(verifier: VerifierProcess, agent_cli: AgentCli, *extra: str, **env: str) -> None:
    init = agent_cli(
        "init", "--server", verifier.url, "--enroll-token", verifier.enroll_token(),
        "--accept-manifest", _manifest_hash(verifier), *(extra or ("--key", "software")), **env,
    )  # fmt: skip
    assert init.code == 0, init.stderr


def _device_id(agent_cli: AgentCli) -> str:
    return str(json.loads((agent_cli.home / "agent.json").read_text())["device_id"])


def _revoke(verifier: VerifierProcess, device_id: str) -> None:
    run_server_cli(["devices", "revoke", "--data-dir", str(verifier.data_dir), device_id])


# -- revocation is learned at the next token call, and the way out is named ------------------


def test_revoked_device_learns_it_at_the_next_token_call(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    _enroll(verifier, agent_cli)
    first = agent_cli("token")
    assert first.code == 0, first.stderr
    assert (agent_cli.home / "token.json").exists()  # cached

    _revoke(verifier, _device_id(agent_cli))
    refused = agent_cli("token")
    assert refused.code == 1
    assert refused.stdout == ""  # no token printed, not even the cached one
    assert RECOVERY in refused.stderr
    assert "enrollment token" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (agent_cli.home / "token.json").exists()  # the cached token was dropped

    # learned once, it fails fast without the verifier, and status and doctor say so
    verifier.stop()
    again = agent_cli("token")
    assert again.code == 1
    assert RECOVERY in again.stderr
    status = agent_cli("status")
    assert status.code == 1
    assert "refused by the verifier" in status.stdout
    assert json.loads(agent_cli("status", "--json").stdout)["device_inactive_since"] > 0
    doctor = agent_cli("doctor")
    assert doctor.code == 1
    token_line = next(line for line in doctor.stdout.splitlines() if " token " in line)
    assert token_line.startswith("FAIL")
    assert RECOVERY in token_line


def test_revocation_without_a_cached_token_is_learned_at_the_challenge(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    _enroll(verifier, agent_cli)
    _revoke(verifier, _device_id(agent_cli))
    doctor = agent_cli("doctor")
    token_line = next(line for line in doctor.stdout.splitlines() if " token " in line)
    assert token_line.startswith("FAIL")
    assert RECOVERY in token_line
    attest = agent_cli("attest")
    assert attest.code == 1
    assert RECOVERY in attest.stderr


def test_token_status_endpoint_answers_the_holder(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    _enroll(verifier, agent_cli)
    token = agent_cli("token").stdout.strip()

    def status(bearer: str) -> dict[str, object]:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        answer = httpx.get(f"{verifier.url}/v1/token/status", headers=headers)
        assert answer.status_code == 200
        doc: dict[str, object] = answer.json()
        return doc

    assert status(token)["state"] == "active"
    assert status(token[:-4] + "AAAA")["state"] == "refresh"  # forged signature
    assert status("")["state"] == "refresh"
    _revoke(verifier, _device_id(agent_cli))
    assert status(token)["state"] == "device-inactive"


def test_unreachable_verifier_still_serves_the_cached_token(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    _enroll(verifier, agent_cli)
    token = agent_cli("token").stdout
    verifier.stop()
    offline = agent_cli("token")
    assert (offline.code, offline.stdout) == (0, token)


# -- forget removes only what the agent made --------------------------------------------------


def test_forget_local_keeps_files_the_agent_did_not_create(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    agent_cli.home.mkdir(parents=True)
    precious = agent_cli.home / "thesis.tex"
    precious.write_text("years of work")
    (agent_cli.home / "notes").mkdir()
    _enroll(verifier, agent_cli)
    agent_cli("attest")

    forget = agent_cli("forget", "--local")
    assert forget.code == 0, forget.stderr
    assert precious.read_text() == "years of work"
    assert (agent_cli.home / "notes").is_dir()
    assert sorted(p.name for p in agent_cli.home.iterdir()) == ["notes", "thesis.tex"]
    assert "left in place" in forget.stdout
    assert "thesis.tex" in forget.stdout


def test_forget_local_removes_a_home_that_only_holds_agent_files(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    _enroll(verifier, agent_cli)
    agent_cli("attest")
    assert agent_cli("forget", "--local").code == 0
    assert not agent_cli.home.exists()


# -- EOF, closed pipes, unusable homes: one line, never a traceback ---------------------------


def test_eof_at_the_consent_prompt_is_one_line(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    controller, terminal = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "agent", "--home", str(agent_cli.home), "init",
         "--server", verifier.url, "--enroll-token", verifier.enroll_token(), "--key", "software"],
        stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=clean_env(HOME=str(agent_cli.user_home)), cwd=agent_cli.project,
    )  # fmt: skip
    os.close(terminal)
    time.sleep(0.5)
    os.write(controller, b"\x04")  # Ctrl-D: end of input at the prompt
    _, stderr = process.communicate(timeout=60)
    os.close(controller)
    text = stderr.decode()
    assert process.returncode == 4, text
    assert "end of input" in text
    assert "Traceback" not in text
    assert not (agent_cli.home / "agent.json").exists()


def test_closed_pipe_is_quiet(agent_cli: AgentCli) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "agent", "fields", "--markdown"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(), cwd=REPO,
    )  # fmt: skip
    assert process.stdout is not None
    process.stdout.close()  # the reader goes away before the first write
    _, stderr = process.communicate(timeout=60)
    assert "Traceback" not in stderr.decode()
    assert process.returncode == 1


def test_home_that_cannot_be_created_is_one_line(verifier: VerifierProcess, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cli = AgentCli(home=blocker / "state", user_home=tmp_path, project=tmp_path)
    run = cli(
        "init", "--server", verifier.url, "--enroll-token", verifier.enroll_token(),
        "--accept-manifest", _manifest_hash(verifier), "--key", "software",
    )  # fmt: skip
    assert run.code == 1
    assert "Traceback" not in run.stderr
    assert "--home DIR" in run.stderr
    assert str(blocker) in run.stderr


# -- SOCKS proxies ----------------------------------------------------------------------------


def test_attestation_through_a_socks5h_proxy(
    verifier: VerifierProcess, agent_cli: AgentCli, tmp_path: Path
) -> None:
    try:
        import pproxy  # noqa: F401
    except ImportError:
        need_tool("pproxy", "pip install pproxy (the dev extra)")
    port = free_port()
    log = (tmp_path / "pproxy.log").open("w")
    proxy = subprocess.Popen(
        [sys.executable, "-c", PPROXY_MAIN, "-l", f"socks5://127.0.0.1:{port}", "-v"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with httpx.Client(proxy=f"socks5://127.0.0.1:{port}") as probe:
                    probe.get(f"{verifier.url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the SOCKS proxy did not start"
                time.sleep(0.2)
        via = {"ALL_PROXY": f"socks5h://127.0.0.1:{port}"}
        _enroll(verifier, agent_cli, "--key", "software", **via)
        attest = agent_cli("attest", **via)
        assert attest.code == 0, attest.stderr
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
        log.close()
    seen = (tmp_path / "pproxy.log").read_text()
    assert seen.count(f"-> 127.0.0.1:{verifier.port}") >= 3  # manifest, enroll, attest


def test_unusable_proxy_scheme_is_one_line(verifier: VerifierProcess, agent_cli: AgentCli) -> None:
    run = agent_cli(
        "init", "--server", verifier.url, "--enroll-token", "et_x", "--key", "software",
        ALL_PROXY="socks4://127.0.0.1:1",
    )  # fmt: skip
    assert run.code == 1
    assert "Traceback" not in run.stderr
    assert "proxy settings" in run.stderr
    assert "NO_PROXY" in run.stderr


# -- every --key provider reaches its real code -----------------------------------------------


def test_secure_enclave_provider_end_to_end_through_its_helper_protocol(
    verifier: VerifierProcess, agent_cli: AgentCli, tmp_path: Path
) -> None:
    helper = tmp_path / "envattest-se-helper"
    helper.write_text(f"#!{sys.executable}\n" + FAKE_SE_HELPER.read_text())
    helper.chmod(0o755)
    env = {"ENVATTEST_SE_HELPER": str(helper)}
    _enroll(verifier, agent_cli, "--key", "secure-enclave", **env)
    enrollment = json.loads((agent_cli.home / "agent.json").read_text())
    assert enrollment["key_provider"] == "secure-enclave"
    # the verifier cannot check a Secure Enclave, so it never records a proven class
    assert enrollment["key_class"] in ("hardware-unverified", "software")
    assert (agent_cli.home / "secure-enclave-key.json").exists()
    assert not (agent_cli.home / "device-key.pem").exists()
    attest = agent_cli("attest", "--json", **env)
    assert attest.code == 0, attest.stderr
    assert json.loads(attest.stdout)["decision"] == "allow"


def test_windows_pcp_off_windows_is_one_line(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    run = agent_cli(
        "init", "--server", verifier.url, "--enroll-token", verifier.enroll_token(),
        "--accept-manifest", _manifest_hash(verifier), "--key", "windows-pcp",
    )  # fmt: skip
    assert run.code == 1
    assert "only works on Windows" in run.stderr
    assert "Traceback" not in run.stderr
