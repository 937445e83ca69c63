"""Base-URL collector: API base-URL variables and coding-tool configuration.

Each URL is reduced by ``urls`` to ``{source, provider, scheme, host, port, classification}``;
keys, paths, queries and file contents are never part of a value.
"""

from __future__ import annotations

from agent.collectors import CollectionContext
from agent.collectors.codingtools import find_all, url_finding
from agent.collectors.envattest_proxy import points_at_proxy, proxied_base_urls
from agent.collectors.findings import Findings, baseurl_errors
from agent.collectors.providers import BASE_URL_ENV
from attest.catalog import FieldId
from attest.catalog.values import BaseUrl

ENV = FieldId("baseurl.env")
TOOLS = FieldId("baseurl.tools")
ERRORS = FieldId("baseurl.errors")


def env_base_urls(ctx: CollectionContext) -> Findings[BaseUrl]:
    """The base-URL variables of the agent's environment, each its own source; one that
    points at envattest's own proxy is reported as the proxy's upstream."""
    direct = Findings.merge(
        url_finding(f"env:{name}", provider, ctx.env[name])
        for name, provider in BASE_URL_ENV.items()
        if name in ctx.env and not points_at_proxy(ctx, ctx.env[name])
    )
    return direct + proxied_base_urls(ctx)


def collect(ctx: CollectionContext, wanted: frozenset[FieldId]) -> dict[FieldId, object]:
    """The base-URL family. ``baseurl.errors`` covers the sources read for the other wanted
    fields, each entry naming the field its source feeds; asked for alone, it covers them all."""
    sources = wanted - {ERRORS} or frozenset({ENV, TOOLS})
    env = env_base_urls(ctx) if ENV in sources else Findings[BaseUrl]()
    tools = find_all(ctx) if TOOLS in sources else Findings[BaseUrl]()
    values: dict[FieldId, object] = {
        ENV: list(env.found),
        TOOLS: list(tools.found),
        ERRORS: [
            *baseurl_errors("baseurl.env", env.errors),
            *baseurl_errors("baseurl.tools", tools.errors),
        ],
    }
    return {k: v for k, v in values.items() if k in wanted}
