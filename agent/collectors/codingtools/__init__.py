"""Base URLs in coding-tool configuration, one module per tool, each with ``find(ctx)``.

Sources are named ``<tool>:<scope>`` (``claude-code:project``, ``codex:user``), never by
path: paths name people and projects and stay on the machine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from agent.collectors import CollectionContext
from agent.collectors.configfiles import ConfigFile, ErrorCode
from agent.collectors.findings import Findings, failed
from agent.collectors.providers import BASE_URL_ENV
from agent.collectors.urlreaders import BOTH, Reader
from agent.collectors.urls import base_urls
from attest.catalog.values import BaseUrl

ToolFinder = Callable[[CollectionContext], Findings[BaseUrl]]


def url_finding(
    source: str, provider: str, raw: object, readers: Sequence[Reader] = BOTH
) -> Findings[BaseUrl]:
    """One configured URL as ``readers``' clients read it, or an ``invalid-url`` error when
    none of them could use it. Empty or non-text is absent."""
    if not isinstance(raw, str) or not raw.strip():
        return Findings()
    reduced = base_urls(source, provider, raw, readers)
    return Findings(found=tuple(reduced)) if reduced else failed(source, ErrorCode.INVALID_URL)


def env_block_urls(
    source: str, env: Mapping[str, object], readers: Sequence[Reader] = BOTH
) -> Findings[BaseUrl]:
    """The base-URL variables of an ``env``-style block, in catalog variable order."""
    return Findings.merge(
        url_finding(source, provider, env[name], readers)
        for name, provider in BASE_URL_ENV.items()
        if name in env
    )


def loaded_or_error(source: str, loaded: ConfigFile | None) -> tuple[object, Findings[BaseUrl]]:
    """The data of an existing, parsed file, or the error Findings for it (absent: nothing)."""
    if loaded is None:
        return None, Findings()
    if loaded.error is not None:
        return None, failed(source, loaded.error)
    return loaded.data, Findings()


def find_git_root(ctx: CollectionContext, *, limit: int = 64) -> Path | None:
    """The nearest directory at or above the project holding ``.git`` (dir or worktree file).

    Like git, the search stops below any ``GIT_CEILING_DIRECTORIES`` entry.
    """
    separator = ";" if ctx.platform == "windows" else ":"
    ceilings = {Path(p) for p in ctx.env.get("GIT_CEILING_DIRECTORIES", "").split(separator) if p}
    current = ctx.project_dir
    for _ in range(limit):
        if (current / ".git").exists():
            return current
        if current.parent == current or current.parent in ceilings:
            return None
        current = current.parent
    return None


def find_all(ctx: CollectionContext) -> Findings[BaseUrl]:
    """Every coding tool's base URLs, tool by tool."""
    from agent.collectors.codingtools import (
        aider,
        claude_code,
        codex,
        continue_dev,
        gemini_cli,
        opencode,
    )

    finders: tuple[ToolFinder, ...] = (
        claude_code.find,
        codex.find,
        aider.find,
        continue_dev.find,
        gemini_cli.find,
        opencode.find,
    )
    return Findings.merge(finder(ctx) for finder in finders)
