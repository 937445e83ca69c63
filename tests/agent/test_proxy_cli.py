"""``envattest proxy`` and ``exec --via-proxy`` on the command line: usage errors in one line
before anything is attempted, and Ctrl-C / SIGTERM handled the way the tool handles them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import AgentCli
from tests.servers import VerifierProcess, clean_env

CHILD = """\
import signal, sys, time
signal.signal(signal.SIGINT, lambda *_: sys.exit(42))
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["exec", "--via-proxy", "--upstream", "https://gw.example", "--", "my-wrapper"],
         "pass --tool with one of claude, codex, gemini, aider"),
        (["exec", "--via-proxy", "--", "claude"], "the proxy needs --upstream https://GATEWAY"),
        (["exec", "--upstream", "https://gw.example", "--", "true"],
         "--upstream, --tool and --ca-file apply only with --via-proxy"),
        (["proxy", "--upstream", "http://gw.example"], "uses plain http"),
        (["proxy", "--upstream", "https://gw.example"], "run 'envattest init"),
    ],
)  # fmt: skip
def test_usage_errors_are_one_line_and_nothing_runs(
    agent_cli: AgentCli, args: list[str], message: str
) -> None:
    run = agent_cli(*args)
    assert run.code == 1
    assert message in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert not agent_cli.home.exists()


@pytest.fixture
def enrolled(verifier: VerifierProcess, agent_cli: AgentCli) -> AgentCli:
    manifest = httpx.get(f"{verifier.url}/v1/manifest").headers["ETag"].strip('"')
    init = agent_cli(
        "init", "--server", verifier.url, "--enroll-token", verifier.enroll_token(),
        "--accept-manifest", manifest, "--key", "software",
    )  # fmt: skip
    assert init.code == 0, init.stderr
    return agent_cli


def _start(agent_cli: AgentCli) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "agent", "--home", str(agent_cli.home), "exec", "--via-proxy",
         "--upstream", "http://127.0.0.1:9", "--tool", "claude",
         "--", sys.executable, "-c", CHILD],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env=clean_env(HOME=str(agent_cli.user_home)), cwd=agent_cli.project,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n", process.communicate(timeout=30)
    return process


def test_ctrl_c_goes_to_the_tool_and_its_exit_code_comes_back(enrolled: AgentCli) -> None:
    process = _start(enrolled)
    os.killpg(process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    _, err = process.communicate(timeout=30)
    assert process.returncode == 42
    assert err == ""  # no traceback, no noise from the wrapper


def test_sigterm_is_passed_to_the_tool(enrolled: AgentCli) -> None:
    process = _start(enrolled)
    time.sleep(0.2)
    process.send_signal(signal.SIGTERM)  # to the wrapper only
    _, err = process.communicate(timeout=30)
    assert process.returncode == 128 + signal.SIGTERM  # the tool died of it, as a shell says
    assert err == ""
