"""Base-URL family: variables and every coding tool's configuration, on each platform."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from agent.collectors import CollectionContext
from agent.collectors.baseurls import collect
from agent.collectors.codingtools import (
    aider,
    claude_code,
    codex,
    continue_dev,
    gemini_cli,
    opencode,
)
from attest.catalog import FieldId

from .conftest import Recording
from .support import write

ENV = frozenset({FieldId("baseurl.env")})
TOOLS = frozenset({FieldId("baseurl.tools")})
ERRORS = frozenset({FieldId("baseurl.errors")})


def _url(
    source: str,
    provider: str,
    host: str,
    classification: str,
    port: int | None = None,
    scheme: str = "https",
) -> dict[str, object]:
    return {
        "source": source,
        "provider": provider,
        "scheme": scheme,
        "host": host,
        "port": port,
        "classification": classification,
    }


def _hosts(findings: object) -> list[tuple[str, str, str]]:
    return [(u["source"], u["provider"], u["host"]) for u in findings.found]  # type: ignore[attr-defined]


def test_env_variables(recording: Recording, forbidden_run: object) -> None:
    ctx, _ = recording("linux", run=forbidden_run)
    assert collect(ctx, ENV | ERRORS) == {
        "baseurl.env": [
            _url("env:ANTHROPIC_BASE_URL", "anthropic", "relay.example.net", "custom"),
            _url("env:OPENAI_BASE_URL", "openai", "api.openai.com", "official"),
            _url(
                "env:AZURE_OPENAI_ENDPOINT",
                "azure-openai",
                "dev-eastus.openai.azure.com",
                "official",
            ),
            _url(
                "env:GOOGLE_GEMINI_BASE_URL",
                "google-gemini",
                "192.168.10.5",
                "private-network",
                8080,
                "http",
            ),
        ],
        "baseurl.errors": [
            {"field": "baseurl.env", "source": "env:OPENAI_API_BASE", "error": "invalid-url"}
        ],
    }


def test_claude_code_every_scope_on_linux(recording: Recording) -> None:
    ctx, _ = recording("linux")
    assert list(claude_code.find(ctx).found) == [
        _url("claude-code:user", "anthropic", "relay.example.net", "custom", 8443),
        _url(
            "claude-code:project",
            "aws-bedrock",
            "bedrock-runtime.us-east-1.amazonaws.com",
            "official",
        ),
        _url("claude-code:local", "anthropic", "localhost", "localhost", 4000, "http"),
        _url("claude-code:managed", "anthropic", "api.anthropic.com", "official"),
        _url(
            "claude-code:managed", "google-vertex", "us-east5-aiplatform.googleapis.com", "official"
        ),
    ]


def test_claude_code_managed_paths_on_macos_and_windows(recording: Recording) -> None:
    mac, _ = recording("macos")
    assert _hosts(claude_code.find(mac)) == [
        ("claude-code:user", "anthropic", "api.anthropic.com"),
        ("claude-code:project", "anthropic", "10.0.0.7"),
        ("claude-code:managed", "anthropic", "llm-gateway.corp.example"),
    ]
    win, _ = recording("windows")
    assert _hosts(claude_code.find(win)) == [
        ("claude-code:user", "anthropic", "claude-relay.example.com"),
        ("claude-code:managed", "anthropic", "api.anthropic.com"),  # ProgramData
        (
            "claude-code:managed",
            "azure-foundry",
            "contoso-ai.services.ai.azure.com",
        ),  # Program Files
    ]


def test_claude_config_dir_and_project_in_home(
    empty_context: CollectionContext, tmp_path: Path
) -> None:
    body = '{"env": {"ANTHROPIC_BASE_URL": "https://moved.example"}}'
    write(tmp_path / "elsewhere" / "settings.json", body)
    ctx = replace(empty_context, env={"CLAUDE_CONFIG_DIR": str(tmp_path / "elsewhere")})
    assert _hosts(claude_code.find(ctx)) == [("claude-code:user", "anthropic", "moved.example")]
    write(empty_context.home / ".claude" / "settings.json", body)
    at_home = replace(empty_context, project_dir=empty_context.home)
    assert [s for s, _ in claude_code.settings_files(at_home)].count("claude-code:project") == 0


def test_codex(recording: Recording, empty_context: CollectionContext, tmp_path: Path) -> None:
    ctx, _ = recording("linux")
    assert _hosts(codex.find(ctx)) == [
        ("codex:user", "openai", "api.openai.com"),
        ("codex:user", "other", "llm-gw.corp.example"),
        ("codex:user", "azure-openai", "dev-eastus.openai.azure.com"),
        ("codex:user", "ollama", "127.0.0.1"),
    ]
    write(tmp_path / "ch" / "config.toml", '[model_providers.x]\nbase_url = "https://x.example"\n')
    moved = replace(empty_context, env={"CODEX_HOME": str(tmp_path / "ch")})
    assert _hosts(codex.find(moved)) == [("codex:user", "other", "x.example")]


def test_aider_home_git_root_and_project(empty_context: CollectionContext) -> None:
    root = empty_context.project_dir
    sub = root / "pkg"
    (root / ".git").mkdir()
    write(empty_context.home / ".aider.conf.yml", "openai-api-base: https://home.example\n")
    write(root / ".aider.conf.yml", "set-env: ANTHROPIC_API_BASE=https://root.example\n")
    write(
        sub / ".aider.conf.yml",
        "openai-api-base: https://sub.example\nanthropic-api-base: http://127.0.0.1:9\n",
    )
    ctx = replace(empty_context, project_dir=sub)
    assert _hosts(aider.find(ctx)) == [
        ("aider:home", "openai", "home.example"),
        ("aider:git-root", "anthropic", "root.example"),
        ("aider:project", "openai", "sub.example"),
        ("aider:project", "anthropic", "127.0.0.1"),
    ]


def test_aider_recording(recording: Recording) -> None:
    ctx, _ = recording("linux")
    assert _hosts(aider.find(ctx)) == [
        ("aider:home", "openai", "192.168.1.20"),
        ("aider:home", "anthropic", "relay.example.net"),
        ("aider:project", "openai", "::1"),
    ]


def test_continue_yaml_and_legacy_json(recording: Recording) -> None:
    ctx, _ = recording("linux")
    assert _hosts(continue_dev.find(ctx)) == [
        ("continue:user", "anthropic", "api.anthropic.com"),
        ("continue:user", "ollama", "localhost"),
        ("continue:user", "openai", "10.20.30.40"),
        ("continue:user", "openai", "api.openai.com"),
        ("continue:user", "mistral", "codestral.mistral.ai"),
    ]


def test_gemini_cli(recording: Recording) -> None:
    ctx, _ = recording("linux")
    assert _hosts(gemini_cli.find(ctx)) == [
        ("gemini-cli:project", "google-gemini", "generativelanguage.googleapis.com"),
        ("gemini-cli:system", "google-vertex", "europe-west4-aiplatform.googleapis.com"),
        ("gemini-cli:user-env", "google-gemini", "gemini-relay.example.org"),
    ]
    mac, _ = recording("macos")
    assert _hosts(gemini_cli.find(mac)) == [
        ("gemini-cli:system", "google-gemini", "generativelanguage.googleapis.com")
    ]


def test_gemini_cli_system_path_override(empty_context: CollectionContext, tmp_path: Path) -> None:
    write(tmp_path / "sys.json", '{"env": {"GEMINI_API_BASE": "https://override.example"}}')
    ctx = replace(
        empty_context, env={"GEMINI_CLI_SYSTEM_SETTINGS_PATH": str(tmp_path / "sys.json")}
    )
    assert _hosts(gemini_cli.find(ctx)) == [
        ("gemini-cli:system", "google-gemini", "override.example")
    ]


def test_opencode(recording: Recording, empty_context: CollectionContext, tmp_path: Path) -> None:
    ctx, _ = recording("linux")
    assert list(opencode.find(ctx).found) == [
        _url("opencode:user", "anthropic", "api.anthropic.com", "official"),
        _url("opencode:user", "other", "relay.example.net", "custom"),
        _url("opencode:project", "openai", "xn--bcher-kva.example", "custom"),  # IDNA
    ]
    write(
        tmp_path / "oc.jsonc",
        '{"provider": {"openrouter": {"options": {"baseURL": "https://openrouter.ai/api/v1",},},},}',
    )
    custom = replace(empty_context, env={"OPENCODE_CONFIG": str(tmp_path / "oc.jsonc")})
    assert list(opencode.find(custom).found) == [
        _url("opencode:env-file", "openrouter", "openrouter.ai", "official")
    ]


def test_hostile_recording(recording: Recording) -> None:
    ctx, _ = recording("hostile")
    values = collect(ctx, ENV | TOOLS | ERRORS)
    assert values == {
        "baseurl.env": [
            # A backslash ends the authority for WHATWG clients: the real host is evil.example.
            # Node clients read the backslash as a slash, httpx as userinfo: both hosts.
            _url("env:OPENAI_BASE_URL", "openai", "evil.example", "custom"),
            _url("env:OPENAI_BASE_URL", "openai", "api.openai.com", "official"),
            _url(
                "env:GOOGLE_GEMINI_BASE_URL",
                "google-gemini",
                "generativelanguage.googleapis.com.evil.example",
                "custom",
            ),
        ],
        "baseurl.tools": [],
        "baseurl.errors": [
            {"field": "baseurl.env", "source": "env:ANTHROPIC_BASE_URL", "error": "invalid-url"},
            {"field": "baseurl.tools", "source": "claude-code:user", "error": "invalid-json"},
            {
                "field": "baseurl.tools",
                "source": "claude-code:project",
                "error": "unexpected-shape",
            },
            {"field": "baseurl.tools", "source": "claude-code:local", "error": "unexpected-shape"},
            {"field": "baseurl.tools", "source": "codex:user", "error": "invalid-toml"},
            {"field": "baseurl.tools", "source": "aider:home", "error": "invalid-yaml"},
            {"field": "baseurl.tools", "source": "continue:user", "error": "invalid-yaml"},
            {"field": "baseurl.tools", "source": "gemini-cli:user", "error": "invalid-url"},
            {"field": "baseurl.tools", "source": "gemini-cli:user", "error": "invalid-url"},
            {"field": "baseurl.tools", "source": "opencode:user", "error": "invalid-json"},
        ],
    }
    assert "sk-ant" not in json.dumps(values)


@pytest.mark.parametrize(
    ("relative", "source"),
    [
        (".claude/settings.json", "claude-code:user"),
        (".codex/config.toml", "codex:user"),
        (".aider.conf.yml", "aider:home"),
        (".continue/config.yaml", "continue:user"),
        (".gemini/settings.json", "gemini-cli:user"),
        (".config/opencode/opencode.json", "opencode:user"),
    ],
)
@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("huge", "too-large"),
        ("binary", "binary"),
        ("loop", "symlink-loop"),
        ("directory", "not-a-file"),
    ],
)
def test_generated_hostile_files_for_every_tool(
    empty_context: CollectionContext, relative: str, source: str, kind: str, error: str
) -> None:
    target = empty_context.home / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind == "huge":
        write(target, "#" * (1 << 20) + "\n")
    elif kind == "binary":
        write(target, b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    elif kind == "loop":
        target.symlink_to(target)
    else:
        target.mkdir()
    assert collect(empty_context, TOOLS | ERRORS) == {
        "baseurl.tools": [],
        "baseurl.errors": [{"field": "baseurl.tools", "source": source, "error": error}],
    }


def test_secrets_in_tool_files_never_leave(recording: Recording) -> None:
    for name in ("linux", "macos", "windows"):
        ctx, _ = recording(name)
        text = json.dumps(collect(ctx, ENV | TOOLS | ERRORS))
        for secret in (
            "NEVERSENT",
            "sk-relay-SECRET",
            "key=",
            "/v1",
            "api_key",
            "tok",
            "RELAY_KEY",
            "get-key",
        ):
            assert secret not in text, (name, secret)


def test_gemini_settings_keys_that_count_as_base_urls(empty_context: CollectionContext) -> None:
    settings = {
        "db": {"databaseUrl": "https://db.example"},
        "mcpServers": {"s": {"url": "https://mcp.example", "httpUrl": "https://mcp2.example"}},
        "telemetry": {"otlpEndpoint": "https://otel.example"},
        "a": {"baseURL": "https://one.example", "b": [{"api_base": "https://two.example"}]},
    }
    write(empty_context.home / ".gemini" / "settings.json", json.dumps(settings))
    assert [h for _, _, h in _hosts(gemini_cli.find(empty_context))] == [
        "one.example",
        "two.example",
    ]
