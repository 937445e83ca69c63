"""Pointing a coding tool at the proxy: its base-URL variables, per tool.

Each tool reads its API endpoint from its own variable; ``--via-proxy`` sets it to the proxy's
URL (which carries the per-run secret) and, where a tool refuses to start without an API key,
a placeholder that the proxy drops. The variables ``ENVATTEST_PROXY_LISTEN`` and
``ENVATTEST_PROXY_UPSTREAM`` let the base-URL collector report the upstream, not loopback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath

from agent.collectors.envattest_proxy import LISTEN_ENV, UPSTREAM_ENV
from agent.errors import AgentError
from agent.proxy.running import ProxyEndpoint

PLACEHOLDER_KEY = "envattest-proxy-sets-the-credential"
"""What a tool sends as its key; the proxy drops it and sets the device's token."""


@dataclass(frozen=True)
class ToolWiring:
    """The variables one tool reads: base URL (with the path it expects) and credentials."""

    name: str
    base_urls: Mapping[str, str]
    """Variable -> path appended to the proxy URL (``/v1`` for OpenAI-style clients)."""
    placeholders: tuple[str, ...] = ()
    unset: tuple[str, ...] = field(default=())
    """Credential variables that would override the placeholder and send a real key."""


TOOLS: Mapping[str, ToolWiring] = {
    wiring.name: wiring
    for wiring in (
        ToolWiring(
            "claude",
            {"ANTHROPIC_BASE_URL": ""},
            placeholders=("ANTHROPIC_API_KEY",),
            unset=("ANTHROPIC_AUTH_TOKEN",),
        ),
        ToolWiring(
            "codex",
            {"OPENAI_BASE_URL": "/v1"},
            placeholders=("OPENAI_API_KEY",),
        ),
        ToolWiring(
            "gemini",
            {"GOOGLE_GEMINI_BASE_URL": ""},
            placeholders=("GEMINI_API_KEY",),
            unset=("GOOGLE_API_KEY",),
        ),
        ToolWiring(
            "aider",
            {"OPENAI_API_BASE": "/v1", "ANTHROPIC_API_BASE": "", "ANTHROPIC_BASE_URL": ""},
            placeholders=("OPENAI_API_KEY", "ANTHROPIC_API_KEY"),
        ),
    )
}


def wiring_for(command: str, tool: str | None = None) -> ToolWiring:
    """The wiring named by ``--tool``, else the one for the command's file name."""
    name = tool or PurePath(command).name.lower().removesuffix(".exe").removesuffix(".cmd")
    try:
        return TOOLS[name]
    except KeyError:
        known = ", ".join(TOOLS)
        raise AgentError(
            f"--via-proxy does not know which variables {name!r} reads; pass --tool with one "
            f"of {known} (the tool whose API the command speaks)"
        ) from None


def marked_environment(environ: Mapping[str, str], endpoint: ProxyEndpoint) -> dict[str, str]:
    """``environ`` plus the markers that name the proxy and its upstream."""
    return {**environ, LISTEN_ENV: endpoint.listen_url, UPSTREAM_ENV: endpoint.upstream.url}


def tool_environment(
    environ: Mapping[str, str], wiring: ToolWiring, endpoint: ProxyEndpoint
) -> dict[str, str]:
    """The tool's environment: base URLs at the proxy, placeholder keys, markers."""
    env = marked_environment(environ, endpoint)
    for name in wiring.unset:
        env.pop(name, None)
    env.update({name: endpoint.base_url + path for name, path in wiring.base_urls.items()})
    env.update(dict.fromkeys(wiring.placeholders, PLACEHOLDER_KEY))
    return env
