"""Proxy collector: proxy variables, OS settings, PAC/WPAD, tool settings, tunnel interfaces.

Every proxy is reduced by ``urls`` to ``{source, scheme, host, port, has_credentials}``.
Each field reads only its own sources: asking for ``proxy.env`` runs no command and opens
no file. ``proxy.errors`` covers the sources read for the other wanted fields; asked for
alone, it covers them all.
"""

from __future__ import annotations

import re

from agent.collectors import CollectionContext
from agent.collectors.findings import Findings, proxy_errors
from agent.collectors.osproxy import OsProxySettings, OsWant, read_os_proxy
from agent.collectors.toolproxies import PROXY_ENV_NAMES, endpoint_finding, find_tool_proxies
from agent.collectors.tunnels import find_tunnels
from attest.catalog import FieldId
from attest.catalog.values import ProxyEndpoint, ProxySourceError, ProxySourceField

ENV = FieldId("proxy.env")
NO_PROXY = FieldId("proxy.no_proxy")
OS = FieldId("proxy.os")
PAC = FieldId("proxy.pac")
AUTO_DETECT = FieldId("proxy.auto_detect")
TOOLS = FieldId("proxy.tools")
TUNNELS = FieldId("proxy.tunnels")
ERRORS = FieldId("proxy.errors")

_ALL_SOURCES = frozenset({ENV, NO_PROXY, OS, PAC, AUTO_DETECT, TOOLS, TUNNELS})
_OS_FIELDS = frozenset({OS, PAC, AUTO_DETECT})
# Host patterns only: names, wildcards, IPs and CIDRs. Anything else is not a pattern.
_NO_PROXY_ENTRY = re.compile(r"[A-Za-z0-9.*:_\[\]/%-]{1,255}")
_MAX_NO_PROXY = 256


def env_proxies(ctx: CollectionContext) -> Findings[ProxyEndpoint]:
    """``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` in both cases (curl honours only some
    upper-case ones, Python and Go all of them: each set variable is reported)."""
    names = [v for n in PROXY_ENV_NAMES for v in (n, n.lower())]
    return Findings.merge(
        endpoint_finding(f"env:{name}", ctx.env[name]) for name in names if name in ctx.env
    )


def no_proxy_patterns(ctx: CollectionContext) -> list[str]:
    """Distinct host patterns of ``NO_PROXY`` and ``no_proxy``, in order."""
    patterns: list[str] = []
    for name in ("NO_PROXY", "no_proxy"):
        for entry in re.split(r"[,\s]+", ctx.env.get(name, "")):
            if _NO_PROXY_ENTRY.fullmatch(entry) and entry not in patterns:
                patterns.append(entry)
    return patterns[:_MAX_NO_PROXY]


def collect(ctx: CollectionContext, wanted: frozenset[FieldId]) -> dict[FieldId, object]:
    """The proxy family."""
    sources = (wanted - {ERRORS}) or _ALL_SOURCES
    values: dict[FieldId, object] = {}
    errors: list[ProxySourceError] = []
    if ENV in sources:
        env = env_proxies(ctx)
        values[ENV] = list(env.found)
        errors.extend(proxy_errors("proxy.env", env.errors))
    if NO_PROXY in sources:
        values[NO_PROXY] = no_proxy_patterns(ctx)
    if sources & _OS_FIELDS:
        want = OsWant(
            endpoints=OS in sources, pac=PAC in sources, auto_detect=AUTO_DETECT in sources
        )
        settings: OsProxySettings = read_os_proxy(ctx, want)
        values[OS] = list(settings.endpoints)
        values[PAC] = list(settings.pac)
        values[AUTO_DETECT] = settings.auto_detect
        # One OS source feeds several fields: its error is reported for each one asked for.
        fed: list[ProxySourceField] = [f for f in ("proxy.os", "proxy.pac") if f in sources]
        for field_id in fed or ["proxy.auto_detect"]:
            errors.extend(proxy_errors(field_id, settings.errors))
    if TOOLS in sources:
        tools = find_tool_proxies(ctx)
        values[TOOLS] = list(tools.found)
        errors.extend(proxy_errors("proxy.tools", tools.errors))
    if TUNNELS in sources:
        values[TUNNELS] = find_tunnels(ctx)
    values[ERRORS] = errors
    return {k: v for k, v in values.items() if k in wanted}
