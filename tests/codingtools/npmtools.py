"""Coding tools installed from npm for the tests, under one prefix that ``.ci/run`` fills.

``.ci/run`` runs ``npm install --prefix ~/.cache/envattest-ci/npm`` with the pinned
``@anthropic-ai/claude-code``, ``@openai/codex`` and ``@google/gemini-cli``;
``npm_tool("claude")`` finds the executable there. A missing tool skips locally with the
command that installs it, and fails under ``CI=true``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from tests._support import missing_component, need_tool

PACKAGES = {
    "claude": "@anthropic-ai/claude-code",
    "codex": "@openai/codex",
    "gemini": "@google/gemini-cli",
}


def npm_prefix() -> Path:
    """The prefix the tools are installed under (``ENVATTEST_NPM_PREFIX`` overrides it)."""
    override = os.environ.get("ENVATTEST_NPM_PREFIX")
    return Path(override) if override else Path.home() / ".cache" / "envattest-ci" / "npm"


@dataclass(frozen=True)
class NpmTool:
    """An npm-installed command line tool: its executable and package version."""

    name: str
    package: str
    path: Path
    version: str


def npm_tool(name: str) -> NpmTool:
    """The tool ``name`` (a key of PACKAGES) or skip/fail with how to install it."""
    package = PACKAGES[name]
    need_tool("node", "apt-get install nodejs npm")
    prefix = npm_prefix()
    path = prefix / "node_modules" / ".bin" / name
    manifest = prefix / "node_modules" / package / "package.json"
    if not (os.access(path, os.X_OK) and manifest.is_file()):
        missing_component(
            f"{name} not found under {prefix}; run: npm install --prefix {prefix} {package}"
        )
    version = str(json.loads(manifest.read_text()).get("version", "unknown"))
    return NpmTool(name=name, package=package, path=path, version=version)


__all__ = ["PACKAGES", "NpmTool", "npm_prefix", "npm_tool"]
