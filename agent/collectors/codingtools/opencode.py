"""opencode: ``provider.<id>.options.baseURL`` in user, project and ``$OPENCODE_CONFIG`` files."""

from __future__ import annotations

from pathlib import Path

from agent.collectors import CollectionContext
from agent.collectors.codingtools import find_git_root, loaded_or_error, url_finding
from agent.collectors.configfiles import ErrorCode, load_json
from agent.collectors.findings import Findings, failed
from agent.collectors.providers import provider_for_tool_id
from agent.collectors.urlreaders import Reader
from attest.catalog.values import BaseUrl

_READERS = (Reader.WHATWG,)  # WHATWG URL parsing (Node.js; Rust url crate)

_NAMES = ("opencode.json", "opencode.jsonc")


def _from_config(source: str, path: Path) -> Findings[BaseUrl]:
    data, problem = loaded_or_error(source, load_json(path, comments=True))
    if data is None:
        return problem
    if not isinstance(data, dict):
        return failed(source, ErrorCode.UNEXPECTED_SHAPE)
    providers = data.get("provider", {})
    if not isinstance(providers, dict):
        return failed(source, ErrorCode.UNEXPECTED_SHAPE)
    parts = []
    for provider_id, entry in providers.items():
        options = entry.get("options") if isinstance(entry, dict) else None
        if isinstance(options, dict):
            provider = provider_for_tool_id(provider_id)
            parts.append(url_finding(source, provider, options.get("baseURL"), _READERS))
    return Findings.merge(parts)


def _config_files(ctx: CollectionContext) -> list[tuple[str, Path]]:
    xdg = ctx.env.get("XDG_CONFIG_HOME") or ""
    user_dir = (Path(xdg) if xdg else ctx.home / ".config") / "opencode"
    files = [("opencode:user", user_dir / name) for name in _NAMES]
    # opencode looks for project files from the working directory up to the git root.
    stop = find_git_root(ctx) or ctx.project_dir
    directory = ctx.project_dir
    while True:
        files.extend(("opencode:project", directory / name) for name in _NAMES)
        if directory == stop or directory.parent == directory:
            break
        directory = directory.parent
    custom = ctx.env.get("OPENCODE_CONFIG") or ""
    if custom:
        files.append(("opencode:env-file", Path(custom)))
    return files


def find(ctx: CollectionContext) -> Findings[BaseUrl]:
    """Every opencode configuration file that exists."""
    return Findings.merge(_from_config(source, path) for source, path in _config_files(ctx))
