"""Codex: ``config.toml`` model providers' ``base_url`` and the top-level URL overrides."""

from __future__ import annotations

from pathlib import Path

from agent.collectors import CollectionContext
from agent.collectors.codingtools import loaded_or_error, url_finding
from agent.collectors.configfiles import ErrorCode, load_toml
from agent.collectors.findings import Findings, failed
from agent.collectors.providers import provider_for_tool_id
from agent.collectors.urlreaders import Reader
from attest.catalog.values import BaseUrl

_READERS = (Reader.WHATWG,)  # WHATWG URL parsing (Node.js; Rust url crate)

_TOP_LEVEL_URLS = ("openai_base_url", "chatgpt_base_url")


def _from_config(source: str, path: Path) -> Findings[BaseUrl]:
    data, problem = loaded_or_error(source, load_toml(path))
    if not isinstance(data, dict):
        return problem
    parts = [url_finding(source, "openai", data.get(key), _READERS) for key in _TOP_LEVEL_URLS]
    providers = data.get("model_providers", {})
    if not isinstance(providers, dict):
        return Findings.merge([*parts, failed(source, ErrorCode.UNEXPECTED_SHAPE)])
    for provider_id, table in providers.items():
        if isinstance(table, dict):
            parts.append(
                url_finding(
                    source, provider_for_tool_id(provider_id), table.get("base_url"), _READERS
                )
            )
    return Findings.merge(parts)


def find(ctx: CollectionContext) -> Findings[BaseUrl]:
    """``$CODEX_HOME/config.toml`` (default ``~/.codex``) and the project's ``.codex``."""
    codex_home = ctx.env.get("CODEX_HOME") or ""
    user = (Path(codex_home) if codex_home else ctx.home / ".codex") / "config.toml"
    project = ctx.project_dir / ".codex" / "config.toml"
    files = [("codex:user", user)] + ([("codex:project", project)] if project != user else [])
    return Findings.merge(_from_config(source, path) for source, path in files)
