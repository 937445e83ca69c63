"""Claude Code: the ``env`` blocks of its user, project, local and managed settings files."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from agent.collectors import CollectionContext
from agent.collectors.codingtools import env_block_urls
from agent.collectors.configfiles import ErrorCode, load_json
from agent.collectors.findings import Findings, failed
from agent.collectors.urlreaders import Reader
from attest.catalog.values import BaseUrl

_READERS = (Reader.WHATWG,)  # WHATWG URL parsing (Node.js; Rust url crate)

EnvBlock = tuple[str, Mapping[str, object]]
"""A source name and the ``env`` object of that settings file."""


def settings_files(ctx: CollectionContext) -> list[tuple[str, Path]]:
    """Claude Code settings files by scope, lowest precedence first."""
    config_dir = ctx.env.get("CLAUDE_CONFIG_DIR") or ""
    user_dir = Path(config_dir) if config_dir else ctx.home / ".claude"
    files = [
        ("claude-code:user", user_dir / "settings.json"),
        ("claude-code:project", ctx.project_dir / ".claude" / "settings.json"),
        ("claude-code:local", ctx.project_dir / ".claude" / "settings.local.json"),
    ]
    root = ctx.system_root
    if ctx.platform == "windows":
        files.append(("claude-code:managed", root / "ProgramData/ClaudeCode/managed-settings.json"))
        # The location before ProgramData; still honoured, so still looked at.
        files.append(
            ("claude-code:managed", root / "Program Files/ClaudeCode/managed-settings.json")
        )
    elif ctx.platform == "darwin":
        managed = root / "Library/Application Support/ClaudeCode/managed-settings.json"
        files.append(("claude-code:managed", managed))
    else:
        files.append(("claude-code:managed", root / "etc/claude-code/managed-settings.json"))
    # Run from the home directory, the project file *is* the user file: report it once.
    seen: set[Path] = set()
    unique = []
    for source, path in files:
        if path not in seen:
            seen.add(path)
            unique.append((source, path))
    return unique


def env_blocks(ctx: CollectionContext) -> Findings[EnvBlock]:
    """The ``env`` object of every Claude Code settings file that has one."""
    blocks: list[Findings[EnvBlock]] = []
    for source, path in settings_files(ctx):
        loaded = load_json(path)
        if loaded is None:
            continue
        if loaded.error is not None:
            blocks.append(failed(source, loaded.error))
            continue
        if not isinstance(loaded.data, dict):
            blocks.append(failed(source, ErrorCode.UNEXPECTED_SHAPE))
            continue
        env = loaded.data.get("env")
        if env is None:
            continue
        if not isinstance(env, dict):
            blocks.append(failed(source, ErrorCode.UNEXPECTED_SHAPE))
            continue
        blocks.append(Findings(found=((source, env),)))
    return Findings.merge(blocks)


def find(ctx: CollectionContext) -> Findings[BaseUrl]:
    """Base-URL variables set in Claude Code settings ``env`` blocks."""
    blocks = env_blocks(ctx)
    urls = Findings.merge(env_block_urls(source, env, _READERS) for source, env in blocks.found)
    return Findings(urls.found, blocks.errors + urls.errors)
