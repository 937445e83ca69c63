"""Codex CLI (from npm) with a provider ``auth`` command ``envattest token``, through nginx.

The provider is the one in docs/install.md. A request reaches the upstream with the
verifier's identity; in one running Codex, a request made after the token expired is
answered 401 by the gateway and Codex runs ``envattest token`` again and succeeds; a revoked
device is told what to do.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.codingtools.installdoc import install_block
from tests.codingtools.npmtools import NpmTool, npm_tool
from tests.codingtools.stack import Stack, running_stack
from tests.server.support import token_claims
from tests.stubs.llm_api import RecordedRequest


@pytest.fixture(scope="module")
def codex() -> NpmTool:
    return npm_tool("codex")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, codex: NpmTool) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("codex")) as running:
        config = install_block("codex-config").replace(
            "https://llm-gateway.example", running.gateway_url
        )
        (running.user_home / ".codex").mkdir()
        (running.user_home / ".codex" / "config.toml").write_text(config)
        yield running


def _codex(stack: Stack, codex: NpmTool, prompt: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(codex.path), "exec", "--skip-git-repo-check", prompt],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=240,
        env=stack.tool_env(CODEX_HOME=str(stack.user_home / ".codex")), cwd=stack.user_home,
    )  # fmt: skip


def _bearer(request: RecordedRequest) -> str:
    return request.headers.get("authorization", "").removeprefix("Bearer ")


def test_a_request_succeeds_with_the_devices_identity(stack: Stack, codex: NpmTool) -> None:
    stack.upstream.clear()
    done = _codex(stack, codex, "say hi")
    assert done.returncode == 0, done.stderr
    assert "stub says hello" in done.stdout
    seen = stack.upstream.model_requests()[-1]
    assert seen.headers["x-envattest-device"] == stack.device_id()
    assert token_claims(_bearer(seen))["sub"] == stack.device_id()


def test_an_expired_token_is_replaced_on_401_without_a_restart(
    stack: Stack, codex: NpmTool
) -> None:
    # the first answer is a tool call, held until the token it came with has expired, so
    # Codex's next request carries an expired token; the gateway's 401 makes Codex run
    # `envattest token` again
    stack.upstream.clear()
    stack.upstream.pending_calls.append({"name": "get_goal", "arguments": "{}"})
    first: list[str] = []

    def hold_first_answer(request: RecordedRequest) -> bool:
        if request.path.startswith("/v1/responses") and not first:
            first.append(_bearer(request))
            time.sleep(max(0.0, token_claims(first[0])["exp"] - time.time()) + 1)
        return True

    stack.upstream.authorize = hold_first_answer
    try:
        done = _codex(stack, codex, "what is the goal?")
    finally:
        stack.upstream.authorize = None
    assert done.returncode == 0, done.stderr
    assert "stub says hello" in done.stdout
    bearers = [_bearer(r) for r in stack.upstream.model_requests()]
    assert len(bearers) == 2, "the expired token must have been stopped at the gateway"
    assert bearers[0] == first[0]
    assert bearers[1] != first[0]
    assert token_claims(bearers[1])["exp"] > token_claims(first[0])["exp"]


def test_a_revoked_device_is_told_what_to_do(stack: Stack, codex: NpmTool) -> None:
    stack.revoke()
    stack.upstream.clear()
    done = _codex(stack, codex, "say hi")
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "revoked" in output
    assert "envattest init" in output
    assert stack.upstream.requests == []
