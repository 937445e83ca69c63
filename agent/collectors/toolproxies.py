"""Proxies configured for developer tools: git, npm, pip, and Claude Code's ``env`` blocks.

Files are parsed, not tools run: running ``git config`` or ``npm config`` would cost a process
each and would execute whatever the user's PATH holds under those names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from agent.collectors import CollectionContext
from agent.collectors.codingtools import claude_code, find_git_root
from agent.collectors.configfiles import ErrorCode, load_text, parse_ini
from agent.collectors.findings import Findings, failed
from agent.collectors.gitconfig import parse_git_config
from agent.collectors.urlreaders import BOTH, Reader
from agent.collectors.urls import proxy_endpoints
from attest.catalog.values import ProxyEndpoint

PROXY_ENV_NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
# npm and Claude Code are Node programs; pip a Python one. git goes through libcurl, whose
# parser is neither: both readings are reported.
_NODE = (Reader.WHATWG,)
_PYTHON = (Reader.PYTHON,)
_NPM_KEYS = ("proxy", "https-proxy", "http-proxy")
_NPM_ENV_VAR = re.compile(r"\$\{([^}]*)\}")


def endpoint_finding(
    source: str, raw: str, readers: Sequence[Reader] = BOTH
) -> Findings[ProxyEndpoint]:
    """One proxy setting as ``readers``' clients read it, or ``invalid-url`` when none could
    use it. Empty means "no proxy" and is absent."""
    if not raw.strip():
        return Findings()
    found = proxy_endpoints(source, raw, readers)
    return Findings(found=tuple(found)) if found else failed(source, ErrorCode.INVALID_URL)


def _text_of(source: str, path: Path) -> tuple[str | None, Findings[ProxyEndpoint]]:
    loaded = load_text(path)
    if loaded is None:
        return None, Findings()
    if loaded.error is not None:
        return None, failed(source, loaded.error)
    return str(loaded.data), Findings()


def _dedupe(files: Iterable[tuple[str, Path]]) -> list[tuple[str, Path]]:
    seen: set[Path] = set()
    unique = []
    for source, path in files:
        if path not in seen:
            seen.add(path)
            unique.append((source, path))
    return unique


# --- git ------------------------------------------------------------------------------------


def git_config_files(ctx: CollectionContext) -> list[tuple[str, Path]]:
    """git's config files by scope, in git's own order: system, global, local."""
    env, root = ctx.env, ctx.system_root
    files: list[tuple[str, Path]] = []
    if not env.get("GIT_CONFIG_NOSYSTEM"):
        if env.get("GIT_CONFIG_SYSTEM"):
            system = [Path(env["GIT_CONFIG_SYSTEM"])]
        elif ctx.platform == "windows":
            system = [root / "ProgramData/Git/config", root / "Program Files/Git/etc/gitconfig"]
        elif ctx.platform == "darwin":
            # Apple's git, Homebrew on Apple silicon, Homebrew on Intel.
            system = [
                root / "etc/gitconfig",
                root / "opt/homebrew/etc/gitconfig",
                root / "usr/local/etc/gitconfig",
            ]
        else:
            system = [root / "etc/gitconfig"]
        files.extend(("git:system", path) for path in system)
    if env.get("GIT_CONFIG_GLOBAL"):
        files.append(("git:global", Path(env["GIT_CONFIG_GLOBAL"])))
    else:
        xdg = env.get("XDG_CONFIG_HOME") or ""
        files.append(("git:xdg", (Path(xdg) if xdg else ctx.home / ".config") / "git" / "config"))
        files.append(("git:global", ctx.home / ".gitconfig"))
    git_root = find_git_root(ctx)
    if git_root is not None and (git_root / ".git").is_dir():
        files.append(("git:local", git_root / ".git" / "config"))
    return _dedupe(files)


def _git_proxies(source: str, path: Path) -> Findings[ProxyEndpoint]:
    text, problem = _text_of(source, path)
    if text is None:
        return problem
    parts = []
    for entry in parse_git_config(text):
        if entry.key != "proxy" or entry.section not in ("http", "https"):
            continue
        # A URL-scoped key names a remote; the name says only that it is URL-scoped.
        name = f"{entry.section}.proxy" if entry.subsection is None else "http.<url>.proxy"
        parts.append(endpoint_finding(f"{source}:{name}", entry.value))
    return Findings.merge(parts)


# --- npm ------------------------------------------------------------------------------------


def _npm_files(ctx: CollectionContext) -> list[tuple[str, Path]]:
    env = _lower_keys(ctx.env)
    files = []
    if env.get("npm_config_globalconfig"):
        files.append(("npm:global", Path(env["npm_config_globalconfig"])))
    user = env.get("npm_config_userconfig") or ""
    files.append(("npm:user", Path(user) if user else ctx.home / ".npmrc"))
    files.append(("npm:project", ctx.project_dir / ".npmrc"))
    return _dedupe(files)


def _lower_keys(env: Mapping[str, str]) -> dict[str, str]:
    """npm reads ``npm_config_*`` variables in any case."""
    return {k.lower(): v for k, v in env.items() if k.lower().startswith("npm_config_")}


def _npm_proxies(ctx: CollectionContext, source: str, path: Path) -> Findings[ProxyEndpoint]:
    text, problem = _text_of(source, path)
    if text is None:
        return problem
    parts = []
    for section, key, value in parse_ini(text):
        if section == "" and key.replace("_", "-") in _NPM_KEYS:
            # npm expands ${VAR} in .npmrc from the environment.
            expanded = _NPM_ENV_VAR.sub(lambda m: ctx.env.get(m.group(1), ""), value)
            parts.append(endpoint_finding(f"{source}:{key.replace('_', '-')}", expanded, _NODE))
    return Findings.merge(parts)


def _npm_env(ctx: CollectionContext) -> Findings[ProxyEndpoint]:
    return Findings.merge(
        endpoint_finding(f"env:{name}", value, _NODE)
        for name, value in ctx.env.items()
        if name.lower() in ("npm_config_proxy", "npm_config_https_proxy", "npm_config_http_proxy")
    )


# --- pip ------------------------------------------------------------------------------------


def pip_config_files(ctx: CollectionContext) -> list[tuple[str, Path]]:
    """pip's config files in pip's order: system, user (new and legacy), site, $PIP_CONFIG_FILE."""
    env, root, home = ctx.env, ctx.system_root, ctx.home
    if ctx.platform == "windows":
        appdata = env.get("APPDATA") or ""
        files = [
            ("pip:system", root / "ProgramData/pip/pip.ini"),
            ("pip:user-legacy", home / "pip/pip.ini"),
            ("pip:user", (Path(appdata) if appdata else home / "AppData/Roaming") / "pip/pip.ini"),
        ]
    elif ctx.platform == "darwin":
        files = [
            ("pip:system", root / "Library/Application Support/pip/pip.conf"),
            ("pip:user-legacy", home / ".pip/pip.conf"),
            ("pip:user", home / ".config/pip/pip.conf"),
            ("pip:user", home / "Library/Application Support/pip/pip.conf"),
        ]
    else:
        xdg = env.get("XDG_CONFIG_HOME") or ""
        files = [
            ("pip:system", root / "etc/xdg/pip/pip.conf"),
            ("pip:system", root / "etc/pip.conf"),
            ("pip:user-legacy", home / ".pip/pip.conf"),
            ("pip:user", (Path(xdg) if xdg else home / ".config") / "pip/pip.conf"),
        ]
    venv = env.get("VIRTUAL_ENV") or ""
    if venv:
        files.append(
            ("pip:site", Path(venv) / ("pip.ini" if ctx.platform == "windows" else "pip.conf"))
        )
    custom = env.get("PIP_CONFIG_FILE") or ""
    if custom and custom != os.devnull:
        files.append(("pip:env-file", Path(custom)))
    return _dedupe(files)


def _pip_proxies(source: str, path: Path) -> Findings[ProxyEndpoint]:
    text, problem = _text_of(source, path)
    if text is None:
        return problem
    return Findings.merge(
        endpoint_finding(f"{source}:proxy", value, _PYTHON)
        for _section, key, value in parse_ini(text)
        if key == "proxy"
    )


# --- Claude Code ----------------------------------------------------------------------------


def _claude_code_proxies(ctx: CollectionContext) -> Findings[ProxyEndpoint]:
    """Proxy variables in Claude Code settings ``env`` blocks: they apply to its API traffic."""
    blocks = claude_code.env_blocks(ctx)
    parts = [Findings[ProxyEndpoint](errors=blocks.errors)]
    for source, env in blocks.found:
        for name, value in env.items():
            if name.upper() in PROXY_ENV_NAMES and isinstance(value, str):
                parts.append(endpoint_finding(f"{source}:{name}", value, _NODE))
    return Findings.merge(parts)


def find_tool_proxies(ctx: CollectionContext) -> Findings[ProxyEndpoint]:
    """Every tool-level proxy setting, tool by tool."""
    parts = [_git_proxies(source, path) for source, path in git_config_files(ctx)]
    parts.append(_npm_env(ctx))
    parts.extend(_npm_proxies(ctx, source, path) for source, path in _npm_files(ctx))
    if ctx.env.get("PIP_PROXY"):
        parts.append(endpoint_finding("env:PIP_PROXY", ctx.env["PIP_PROXY"], _PYTHON))
    parts.extend(_pip_proxies(source, path) for source, path in pip_config_files(ctx))
    parts.append(_claude_code_proxies(ctx))
    return Findings.merge(parts)
