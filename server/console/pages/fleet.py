"""Fleet: devices by key class and state, decisions over time, top denial reasons, and the
devices whose last attestation is older than the token lifetime."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from server.console import charts
from server.console.auth import Viewer
from server.console.context import ConsoleContext
from server.console.projection import DAY_S
from server.console.render import render
from server.store.fleet_queries import Overview

CHART_DAYS = 30
SVG_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}


def _overview(ctx: ConsoleContext) -> tuple[Overview, list[int], int]:
    now = ctx.now()
    ctx.projection.catch_up(now=now)
    today = now // DAY_S * DAY_S
    days = [today - i * DAY_S for i in reversed(range(CHART_DAYS))]
    ttl = ctx.token_ttl_s()
    return ctx.fleet.overview(fresh_since=now - ttl, days_since=days[0]), days, ttl


def router() -> APIRouter:
    """``/`` and its charts."""
    api = APIRouter()

    @api.get("/", response_class=HTMLResponse)
    def fleet(request: Request, _who: Viewer) -> Response:
        ctx: ConsoleContext = request.app.state.ctx
        overview, _days, ttl = _overview(ctx)
        stale = ctx.fleet.stale_devices(before=ctx.now() - ttl, limit=20)
        classes = sorted({k for k, _ in overview.by_key_class})
        return render(
            request,
            "fleet.html",
            {
                "o": overview,
                "ttl": ttl,
                "stale_devices": stale,
                "classes": classes,
                "states": ("active", "revoked", "erased"),
                "lag": ctx.projection.lag(),
            },
        )

    @api.get("/charts/decisions.svg")
    def decisions_svg(request: Request, _who: Viewer) -> Response:
        ctx: ConsoleContext = request.app.state.ctx
        overview, days, _ = _overview(ctx)
        svg = charts.decisions_chart(overview, days=days)
        return Response(svg, media_type="image/svg+xml", headers=SVG_HEADERS)

    @api.get("/charts/key-classes.svg")
    def key_classes_svg(request: Request, _who: Viewer) -> Response:
        ctx: ConsoleContext = request.app.state.ctx
        overview, _, _ = _overview(ctx)
        return Response(
            charts.key_class_chart(overview), media_type="image/svg+xml", headers=SVG_HEADERS
        )

    return api
