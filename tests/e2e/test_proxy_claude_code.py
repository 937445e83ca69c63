"""The real Claude Code through ``envattest exec --via-proxy``, nginx ``auth_request`` and a
live verifier, against the stub Messages API: a conversation over several ``-p`` turns works,
the API sees only the device's credential, and revoking the device stops the next turn."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time

from agent.proxy.toolenv import PLACEHOLDER_KEY
from attest.dpop import verify_proof
from tests.codingtools.npmtools import npm_tool
from tests.conftest import AgentCli
from tests.e2e.proxy_support import Gateway, enroll
from tests.server.support import token_claims
from tests.servers import REPO, clean_env
from tests.stubs.llm_api import StubLlmApi

TIMEOUT_S = 240
"""Node start-up of three Claude Code runs on a loaded two-core machine."""
QUIET = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1"}


def test_claude_code_turns_go_through_the_proxy_and_stop_after_revocation(
    api_behind_nginx: tuple[Gateway, StubLlmApi], agent_cli: AgentCli
) -> None:
    claude = str(npm_tool("claude").path)
    gateway, api = api_behind_nginx
    verifier = gateway.verifier
    device_id = enroll(agent_cli, verifier)
    revoke = shlex.join(
        [sys.executable, "-m", "server", "devices", "revoke",
         "--data-dir", str(verifier.data_dir), device_id]
    )  # fmt: skip
    script = (
        f'{claude} -p "first question" && {claude} -p --continue "second question" '
        f"&& cd {shlex.quote(str(REPO))} && {revoke} >/dev/null && cd - >/dev/null "
        f'&& {claude} -p --continue "third question"; echo "third exit $?"'
    )
    run = subprocess.run(
        [sys.executable, "-m", "agent", "--home", str(agent_cli.home),
         "exec", "--via-proxy", "--upstream", gateway.url, "--tool", "claude",
         "--", "sh", "-c", script],
        capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
        env=clean_env(HOME=str(agent_cli.user_home), **QUIET), cwd=agent_cli.project,
    )  # fmt: skip
    lines = run.stdout.splitlines()
    assert lines[:2] == ["pong from the stub", "pong from the stub"], run.stdout + run.stderr
    # revocation stopped the third turn, and Claude Code showed why
    assert lines[-1] == "third exit 1", run.stdout
    refused = "403 envattest: no access token: the verifier no longer accepts this device"
    assert refused in run.stdout
    turns = api.model_requests()
    assert len(turns) == 2  # the third never reached the API
    # the second turn carried the first: one conversation over several -p runs
    assert len(turns[1].json()["messages"]) > len(turns[0].json()["messages"])
    for request in api.requests:  # every request: the device's bound token and a proof
        scheme, token = request.headers["authorization"].split(" ", 1)
        assert scheme == "DPoP"
        claims = token_claims(token)
        assert claims["sub"] == device_id
        verify_proof(
            request.headers["dpop"], expected_htm=request.method,
            expected_htu=gateway.url + request.path, expected_jkt=claims["cnf"]["jkt"],
            access_token=token, now=time.time(),
        )  # fmt: skip
        assert request.headers["x-envattest-device"] == device_id
        assert PLACEHOLDER_KEY not in repr(request.headers)
        assert "x-api-key" not in request.headers
