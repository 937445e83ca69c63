"""Clock: an agent whose clock is off by more than the bound is denied, and told why."""

from __future__ import annotations

import re

import httpx

from tests.conftest import AgentCli
from tests.servers import REPO, VerifierProcess

SKEW_S = 3600  # well past the default bound (300 s)
_SKEWED_CLOCK = f"""
import time
_real = time.time
time.time = lambda: _real() - {SKEW_S}
"""


def test_agent_with_a_skewed_clock_is_denied_and_told_why(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    manifest_hash = httpx.get(f"{verifier.url}/v1/manifest").headers["ETag"].strip('"')
    init = agent_cli(
        "init", "--server", verifier.url, "--enroll-token", verifier.enroll_token(),
        "--accept-manifest", manifest_hash, "--key", "software",
    )  # fmt: skip
    assert init.code == 0, init.stderr
    # sitecustomize runs before the agent imports anything: its whole process is an hour late
    skewed = agent_cli.home.parent / "skewed-clock"
    skewed.mkdir()
    (skewed / "sitecustomize.py").write_text(_SKEWED_CLOCK)
    run = agent_cli("attest", PYTHONPATH=f"{skewed}:{REPO}")
    assert run.code == 3, run.stdout + run.stderr
    assert "decision: deny" in run.stdout
    assert "clock" in run.stdout
    # the verifier's clock may tick once between the agent's iat and its check under load
    skews = re.findall(r"(\d+) s behind", run.stdout)
    assert skews, run.stdout
    assert SKEW_S <= int(skews[0]) <= SKEW_S + 5
    assert not agent_cli.home.joinpath("token.json").exists()
