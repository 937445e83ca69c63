"""Base URLs behind the agent's own loopback proxy: reported as the proxy's upstream.

``envattest exec --via-proxy`` points a tool's base-URL variable at ``http://127.0.0.1:PORT/…``.
Where the traffic really goes is the upstream, so when the proxy attests for its tool, a
variable that points at the proxy is reported as the upstream with source ``envattest-proxy``,
never as ``localhost``. The proxy passes its listen and upstream URLs in the collection
context itself (``CollectionContext.proxied``): environment variables naming a proxy are not
believed, since anyone can set them to make a local relay look like the official upstream.
Like every signal, this is self-reported.
"""

from __future__ import annotations

from agent.collectors import CollectionContext
from agent.collectors.findings import Findings
from agent.collectors.providers import BASE_URL_ENV, OTHER
from agent.collectors.urls import destinations
from attest.catalog.values import BaseUrl

SOURCE = "envattest-proxy"
LISTEN_ENV = "ENVATTEST_PROXY_LISTEN"
"""Told to the tool (for its own use): ``http://127.0.0.1:PORT``, where the proxy listens."""
UPSTREAM_ENV = "ENVATTEST_PROXY_UPSTREAM"
"""Told to the tool (for its own use): the gateway URL the proxy forwards to."""


def _listening(ctx: CollectionContext) -> set[tuple[str, int | None]]:
    if ctx.proxied is None:
        return set()
    return {(d.host, d.port) for d in destinations(ctx.proxied[0])}


def points_at_proxy(ctx: CollectionContext, raw: str) -> bool:
    """True when every client reading ``raw`` would connect to this process's proxy."""
    listen = _listening(ctx)
    if not listen:
        return False
    found = {(d.host, d.port) for d in destinations(raw)}
    return bool(found) and found <= listen


def proxied_base_urls(ctx: CollectionContext) -> Findings[BaseUrl]:
    """The upstream once per provider whose variable points at the proxy (``other`` when
    the proxy runs without a tool); nothing when no proxy marks the environment."""
    from agent.collectors.codingtools import url_finding

    if ctx.proxied is None or not _listening(ctx):
        return Findings()
    upstream = ctx.proxied[1]
    providers = dict.fromkeys(
        provider
        for name, provider in BASE_URL_ENV.items()
        if name in ctx.env and points_at_proxy(ctx, ctx.env[name])
    )
    return Findings.merge(url_finding(SOURCE, p, upstream) for p in providers or (OTHER,))
