"""Aider: ``.aider.conf.yml`` in the home directory, the git root and the project directory."""

from __future__ import annotations

from pathlib import Path

from agent.collectors import CollectionContext
from agent.collectors.codingtools import env_block_urls, find_git_root, loaded_or_error, url_finding
from agent.collectors.configfiles import ErrorCode, load_yaml
from agent.collectors.findings import Findings, failed
from agent.collectors.urlreaders import Reader
from attest.catalog.values import BaseUrl

_READERS = (Reader.PYTHON,)  # a Python program

_CONF = ".aider.conf.yml"
# Aider's own options; "anthropic-api-base" is not one today but costs nothing to honour.
_URL_OPTIONS = (("openai-api-base", "openai"), ("anthropic-api-base", "anthropic"))


def _set_env(value: object) -> dict[str, object]:
    """``set-env: [NAME=value, ...]`` (or one string) as a mapping."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    pairs = (item.partition("=") for item in items if isinstance(item, str))
    return {name.strip(): val.strip() for name, sep, val in pairs if sep}


def _from_conf(source: str, path: Path) -> Findings[BaseUrl]:
    data, problem = loaded_or_error(source, load_yaml(path))
    if data is None:
        return problem
    if not isinstance(data, dict):
        return failed(source, ErrorCode.UNEXPECTED_SHAPE)
    parts = [
        url_finding(source, provider, data.get(key), _READERS) for key, provider in _URL_OPTIONS
    ]
    parts.append(env_block_urls(source, _set_env(data.get("set-env")), _READERS))
    return Findings.merge(parts)


def find(ctx: CollectionContext) -> Findings[BaseUrl]:
    """Aider reads all three files; the same file twice is reported once, most specific name."""
    candidates = [("aider:project", ctx.project_dir)]
    git_root = find_git_root(ctx)
    if git_root is not None:
        candidates.append(("aider:git-root", git_root))
    candidates.append(("aider:home", ctx.home))
    seen: set[Path] = set()
    parts = []
    for source, directory in candidates:
        if directory in seen:
            continue
        seen.add(directory)
        parts.append(_from_conf(source, directory / _CONF))
    return Findings.merge(reversed(parts))  # Aider's own order: home, git root, project
