"""Pointing tools at the proxy, and what the base-URL signal reports behind it."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.collectors import CollectionContext
from agent.collectors.baseurls import collect
from agent.errors import AgentError
from agent.proxy.rewrite import Upstream
from agent.proxy.running import ProxyEndpoint
from agent.proxy.secret import RunSecret
from agent.proxy.toolenv import PLACEHOLDER_KEY, TOOLS, tool_environment, wiring_for
from attest.catalog import FieldId

ENDPOINT = ProxyEndpoint(
    port=41000, secret=RunSecret("s3cret"), upstream=Upstream.parse("https://gw.example.com")
)
BASE = "http://127.0.0.1:41000/s3cret"
BASEURL_ENV = FieldId("baseurl.env")


@pytest.mark.parametrize(
    ("command", "variables"),
    [
        ("claude", {"ANTHROPIC_BASE_URL": BASE, "ANTHROPIC_API_KEY": PLACEHOLDER_KEY}),
        (
            "/usr/local/bin/codex",
            {"OPENAI_BASE_URL": BASE + "/v1", "OPENAI_API_KEY": PLACEHOLDER_KEY},
        ),
        ("gemini.cmd", {"GOOGLE_GEMINI_BASE_URL": BASE, "GEMINI_API_KEY": PLACEHOLDER_KEY}),
        ("aider", {"OPENAI_API_BASE": BASE + "/v1", "ANTHROPIC_BASE_URL": BASE,
                   "ANTHROPIC_API_BASE": BASE, "ANTHROPIC_API_KEY": PLACEHOLDER_KEY}),
    ],
)  # fmt: skip
def test_each_tool_gets_its_base_url_and_a_placeholder_key(
    command: str, variables: dict[str, str]
) -> None:
    env = tool_environment({"PATH": "/bin"}, wiring_for(command), ENDPOINT)
    assert {k: env[k] for k in variables} == variables
    assert env["PATH"] == "/bin"
    assert env["ENVATTEST_PROXY_LISTEN"] == "http://127.0.0.1:41000"
    assert env["ENVATTEST_PROXY_UPSTREAM"] == "https://gw.example.com"


def test_real_keys_in_the_environment_are_replaced_or_removed() -> None:
    environ = {"ANTHROPIC_API_KEY": "sk-ant-real", "ANTHROPIC_AUTH_TOKEN": "real-token"}
    env = tool_environment(environ, TOOLS["claude"], ENDPOINT)
    assert env["ANTHROPIC_API_KEY"] == PLACEHOLDER_KEY
    assert "ANTHROPIC_AUTH_TOKEN" not in env
    assert environ["ANTHROPIC_API_KEY"] == "sk-ant-real"  # the caller's mapping is untouched


def test_tool_named_explicitly_wins_and_an_unknown_tool_says_what_to_pass() -> None:
    assert wiring_for("npx", "claude") is TOOLS["claude"]
    with pytest.raises(AgentError, match="pass --tool with one of claude, codex, gemini, aider"):
        wiring_for("my-wrapper.sh")


def _context(env: dict[str, str], tmp_path: Path) -> CollectionContext:
    return CollectionContext(env=env, home=tmp_path, project_dir=tmp_path)


def test_a_base_url_at_the_proxy_is_reported_as_the_upstream(tmp_path: Path) -> None:
    env = tool_environment(
        {"OPENAI_BASE_URL": "https://relay.example/v1"}, TOOLS["claude"], ENDPOINT
    )
    reported = collect(_context(env, tmp_path), frozenset({BASEURL_ENV}))[BASEURL_ENV]
    assert reported == [
        {"source": "env:OPENAI_BASE_URL", "provider": "openai", "scheme": "https",
         "host": "relay.example", "port": None, "classification": "custom"},
        {"source": "envattest-proxy", "provider": "anthropic", "scheme": "https",
         "host": "gw.example.com", "port": None, "classification": "custom"},
    ]  # fmt: skip


def test_the_proxy_without_a_tool_reports_its_upstream_as_other(tmp_path: Path) -> None:
    env = {
        "ENVATTEST_PROXY_LISTEN": ENDPOINT.listen_url,
        "ENVATTEST_PROXY_UPSTREAM": "https://api.anthropic.com",
    }
    reported = collect(_context(env, tmp_path), frozenset({BASEURL_ENV}))[BASEURL_ENV]
    assert [(u["source"], u["provider"], u["classification"]) for u in reported] == [  # type: ignore[index]
        ("envattest-proxy", "other", "custom")
    ]


def test_a_loopback_url_that_is_not_the_proxy_stays_localhost(tmp_path: Path) -> None:
    env = tool_environment({}, TOOLS["claude"], ENDPOINT)
    env["OPENAI_BASE_URL"] = "http://127.0.0.1:41001/v1"  # another port: a local relay
    reported = collect(_context(env, tmp_path), frozenset({BASEURL_ENV}))[BASEURL_ENV]
    assert [(u["source"], u["classification"]) for u in reported] == [  # type: ignore[index]
        ("env:OPENAI_BASE_URL", "localhost"),
        ("envattest-proxy", "custom"),
    ]


def test_without_the_upstream_marker_nothing_is_rewritten(tmp_path: Path) -> None:
    env = {"ENVATTEST_PROXY_LISTEN": ENDPOINT.listen_url, "ANTHROPIC_BASE_URL": BASE}
    reported = collect(_context(env, tmp_path), frozenset({BASEURL_ENV}))[BASEURL_ENV]
    assert [(u["source"], u["classification"]) for u in reported] == [  # type: ignore[index]
        ("env:ANTHROPIC_BASE_URL", "localhost")
    ]
