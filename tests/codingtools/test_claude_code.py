"""Claude Code (from npm) with ``apiKeyHelper = envattest token``, through nginx, for real.

The settings are the ones in docs/install.md. A request reaches the upstream with the
verifier's identity; after the token expires, the same running Claude Code gets a new one
(the gateway's 401 makes it call the helper again); a revoked device is told what to do.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.codingtools.installdoc import install_block
from tests.codingtools.npmtools import NpmTool, npm_tool
from tests.codingtools.stack import TOKEN_TTL_S, Stack, running_stack
from tests.server.support import token_claims


@pytest.fixture(scope="module")
def claude() -> NpmTool:
    return npm_tool("claude")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, claude: NpmTool) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("claude")) as running:
        settings = install_block("claude-settings").replace(
            "https://llm-gateway.example", running.gateway_url
        )
        (running.user_home / ".claude").mkdir()
        (running.user_home / ".claude" / "settings.json").write_text(settings)
        yield running


def _env(stack: Stack, **extra: str) -> dict[str, str]:
    return stack.tool_env(CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", **extra)


def _keys_seen(stack: Stack) -> list[str]:
    return [r.headers.get("x-api-key", "") for r in stack.upstream.model_requests()]


def test_a_request_succeeds_with_the_devices_identity(stack: Stack, claude: NpmTool) -> None:
    stack.upstream.clear()
    done = subprocess.run(
        [str(claude.path), "-p", "say hi"],
        capture_output=True, text=True, env=_env(stack), cwd=stack.user_home, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "stub says hello" in done.stdout
    seen = stack.upstream.model_requests()[-1].headers
    assert seen["x-envattest-device"] == stack.device_id()
    assert token_claims(seen["x-api-key"])["sub"] == stack.device_id()
    assert seen["authorization"] == f"Bearer {seen['x-api-key']}"


def test_an_expired_token_is_replaced_without_a_restart(stack: Stack, claude: NpmTool) -> None:
    session = subprocess.Popen(
        [str(claude.path), "-p", "--input-format", "stream-json",
         "--output-format", "stream-json", "--verbose"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env(stack), cwd=stack.user_home,
    )  # fmt: skip
    assert session.stdin is not None
    stack.upstream.clear()
    try:
        first = _turn(session, "say hi")
        token = _keys_seen(stack)[-1]
        # wait out the token's lifetime: the gateway now refuses it
        time.sleep(max(0.0, token_claims(token)["exp"] - time.time()) + 1)
        second = _turn(session, "say hi again")
    finally:
        session.stdin.close()
        session.wait(timeout=30)
    assert first["is_error"] is False
    assert second["is_error"] is False, second
    keys = _keys_seen(stack)
    assert keys[-1] != token
    assert token_claims(keys[-1])["exp"] - token_claims(token)["exp"] >= TOKEN_TTL_S / 2


def _turn(session: subprocess.Popen[str], text: str) -> dict[str, object]:
    assert session.stdin is not None
    assert session.stdout is not None
    message = {"type": "user", "message": {"role": "user", "content": text}}
    session.stdin.write(json.dumps(message) + "\n")
    session.stdin.flush()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = session.stdout.readline()
        if not line:
            raise AssertionError(f"claude ended: {session.stderr.read() if session.stderr else ''}")
        event = json.loads(line)
        if event.get("type") == "result":
            return dict(event)
    raise AssertionError("claude gave no result in time")


def test_a_revoked_device_is_told_what_to_do(stack: Stack, claude: NpmTool) -> None:
    stack.revoke()
    stack.upstream.clear()
    done = subprocess.run(
        [str(claude.path), "-p", "say hi"],
        capture_output=True, text=True, env=_env(stack, CLAUDE_CODE_MAX_RETRIES="0"),
        cwd=stack.user_home, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "revoked" in done.stderr
    assert "envattest init" in done.stderr
    assert stack.upstream.requests == []
