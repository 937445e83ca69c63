"""Gemini CLI: settings files (system, user, project) and its dedicated ``.gemini/.env`` files.

Gemini CLI has no documented base-URL setting; it takes ``GOOGLE_GEMINI_BASE_URL`` and
``GOOGLE_VERTEX_BASE_URL`` from the environment, which it loads from ``.gemini/.env``. So
the ``.env`` files are read for the base-URL variables (and nothing else is kept), and
settings are searched for base-URL-like keys and an ``env`` block in case a version adds one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from agent.collectors import CollectionContext
from agent.collectors.codingtools import env_block_urls, loaded_or_error, url_finding
from agent.collectors.configfiles import ErrorCode, load_json, load_text, parse_dotenv
from agent.collectors.findings import Findings, failed
from agent.collectors.urlreaders import Reader
from attest.catalog.values import BaseUrl

_READERS = (Reader.WHATWG,)  # WHATWG URL parsing (Node.js; Rust url crate)

_PROVIDER = "google-gemini"
_URL_KEY = re.compile(r"(?:.*[_-]|api)?(?:base[_-]?url|api[_-]?base)", re.IGNORECASE)
_MAX_DEPTH = 8  # settings are shallow; a deeper file is searched no further


def _system_dir(ctx: CollectionContext) -> Path:
    if ctx.platform == "windows":
        return ctx.system_root / "ProgramData" / "gemini-cli"
    if ctx.platform == "darwin":
        return ctx.system_root / "Library" / "Application Support" / "GeminiCli"
    return ctx.system_root / "etc" / "gemini-cli"


def _settings_files(ctx: CollectionContext) -> list[tuple[str, Path]]:
    system_dir = _system_dir(ctx)
    defaults = ctx.env.get("GEMINI_CLI_SYSTEM_DEFAULTS_PATH") or ""
    system = ctx.env.get("GEMINI_CLI_SYSTEM_SETTINGS_PATH") or ""
    return [
        ("gemini-cli:system-defaults", Path(defaults or system_dir / "system-defaults.json")),
        ("gemini-cli:user", ctx.home / ".gemini" / "settings.json"),
        ("gemini-cli:project", ctx.project_dir / ".gemini" / "settings.json"),
        ("gemini-cli:system", Path(system or system_dir / "settings.json")),
    ]


def _url_values(node: object, depth: int = 0) -> Iterator[object]:
    """Values under base-URL-like keys, anywhere in the settings (bounded depth)."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and _URL_KEY.fullmatch(key) and isinstance(value, str):
                yield value
            elif key != "env":
                yield from _url_values(value, depth + 1)
    elif isinstance(node, list):
        for item in node:
            yield from _url_values(item, depth + 1)


def _from_settings(source: str, path: Path) -> Findings[BaseUrl]:
    data, problem = loaded_or_error(source, load_json(path, comments=True))
    if data is None:
        return problem
    if not isinstance(data, dict):
        return failed(source, ErrorCode.UNEXPECTED_SHAPE)
    parts = [url_finding(source, _PROVIDER, value, _READERS) for value in _url_values(data)]
    env = data.get("env")
    if isinstance(env, dict):
        parts.append(env_block_urls(source, env, _READERS))
    return Findings.merge(parts)


def _from_dotenv(source: str, path: Path) -> Findings[BaseUrl]:
    text, problem = loaded_or_error(source, load_text(path))
    return (
        env_block_urls(source, parse_dotenv(text), _READERS) if isinstance(text, str) else problem
    )


def find(ctx: CollectionContext) -> Findings[BaseUrl]:
    """Settings in Gemini CLI's precedence order, then the ``.env`` files."""
    files = _settings_files(ctx)
    # Run from the home directory, the project file is the user file: read it once.
    files = [f for i, f in enumerate(files) if f[1] not in {p for _, p in files[:i]}]
    parts = [_from_settings(source, path) for source, path in files]
    parts.append(_from_dotenv("gemini-cli:user-env", ctx.home / ".gemini" / ".env"))
    project_env = ctx.project_dir / ".gemini" / ".env"
    if project_env != ctx.home / ".gemini" / ".env":
        parts.append(_from_dotenv("gemini-cli:project-env", project_env))
    return Findings.merge(parts)
