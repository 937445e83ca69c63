"""The real Gemini CLI through ``envattest exec --via-proxy``, nginx ``auth_request`` and a
live verifier, against the stub Gemini API: the recipe in docs/install.md answers, and every
request the API sees carries the device's DPoP-bound token and a proof, never the tool's
placeholder key."""

from __future__ import annotations

import subprocess
import sys
import time

from agent.proxy.toolenv import PLACEHOLDER_KEY
from attest.dpop import verify_proof
from tests.codingtools.installdoc import install_block
from tests.codingtools.npmtools import npm_tool
from tests.conftest import AgentCli
from tests.e2e.proxy_support import Gateway, enroll
from tests.server.support import token_claims
from tests.servers import clean_env
from tests.stubs.llm_api import StubLlmApi

TIMEOUT_S = 240
"""Node start-up of Gemini CLI on a loaded two-core machine."""


def test_gemini_cli_answers_through_the_proxy_with_dpop_only(
    api_behind_nginx: tuple[Gateway, StubLlmApi], agent_cli: AgentCli
) -> None:
    gemini = str(npm_tool("gemini").path)
    gateway, api = api_behind_nginx
    device_id = enroll(agent_cli, gateway.verifier)
    settings = agent_cli.user_home / ".gemini" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(install_block("gemini-settings"))
    run = subprocess.run(
        [sys.executable, "-m", "agent", "--home", str(agent_cli.home),
         "exec", "--via-proxy", "--upstream", gateway.url,
         "--", gemini, "-p", "first question"],
        capture_output=True, text=True, timeout=TIMEOUT_S, check=False, stdin=subprocess.DEVNULL,
        env=clean_env(HOME=str(agent_cli.user_home), GEMINI_CLI_TRUST_WORKSPACE="true"),
        cwd=agent_cli.project,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "pong from the stub" in run.stdout
    assert api.model_requests(), "Gemini CLI never reached the API"
    for request in api.requests:  # every request: the device's bound token and a proof
        assert PLACEHOLDER_KEY not in request.headers.values()
        assert "x-goog-api-key" not in request.headers
        scheme, token = request.headers["authorization"].split(" ", 1)
        assert scheme == "DPoP"
        claims = token_claims(token)
        assert claims["sub"] == device_id
        verify_proof(
            request.headers["dpop"], expected_htm=request.method,
            expected_htu=gateway.url + request.path.split("?")[0],
            expected_jkt=claims["cnf"]["jkt"], access_token=token, now=time.time(),
        )  # fmt: skip
