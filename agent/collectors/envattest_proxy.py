"""Base URLs behind the agent's own loopback proxy: reported as the proxy's upstream.

``envattest exec --via-proxy`` points a tool's base-URL variable at ``http://127.0.0.1:PORT/…``
and marks the environment with ``ENVATTEST_PROXY_LISTEN`` and ``ENVATTEST_PROXY_UPSTREAM``.
Where the traffic really goes is the upstream, so a variable that points at the proxy is
reported as the upstream with source ``envattest-proxy``, never as ``localhost``. Like every
signal, this is self-reported.
"""

from __future__ import annotations

from agent.collectors import CollectionContext
from agent.collectors.findings import Findings
from agent.collectors.providers import BASE_URL_ENV, OTHER
from agent.collectors.urls import destinations
from attest.catalog.values import BaseUrl

SOURCE = "envattest-proxy"
LISTEN_ENV = "ENVATTEST_PROXY_LISTEN"
"""``http://127.0.0.1:PORT``: where this run's proxy listens."""
UPSTREAM_ENV = "ENVATTEST_PROXY_UPSTREAM"
"""The gateway URL the proxy forwards to."""


def _listening(ctx: CollectionContext) -> set[tuple[str, int | None]]:
    return {(d.host, d.port) for d in destinations(ctx.env.get(LISTEN_ENV, ""))}


def points_at_proxy(ctx: CollectionContext, raw: str) -> bool:
    """True when every client reading ``raw`` would connect to the proxy's host and port."""
    listen = _listening(ctx)
    if not listen or UPSTREAM_ENV not in ctx.env:
        return False
    found = {(d.host, d.port) for d in destinations(raw)}
    return bool(found) and found <= listen


def proxied_base_urls(ctx: CollectionContext) -> Findings[BaseUrl]:
    """The upstream once per provider whose variable points at the proxy (``other`` when
    the proxy runs without a tool); nothing when no proxy marks the environment."""
    from agent.collectors.codingtools import url_finding

    if not _listening(ctx):
        return Findings()
    upstream = ctx.env.get(UPSTREAM_ENV)
    if upstream is None:
        return Findings()
    providers = dict.fromkeys(
        provider
        for name, provider in BASE_URL_ENV.items()
        if name in ctx.env and points_at_proxy(ctx, ctx.env[name])
    )
    return Findings.merge(url_finding(SOURCE, p, upstream) for p in providers or (OTHER,))
