"""Fields: for each catalog field, the distribution of values across the fleet, each value
linking to the devices that sent it; the manifest with purpose and retention, and the
manifest versions the fleet consented to."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from attest.catalog import CATALOG
from server.console import charts
from server.console.auth import Viewer
from server.console.context import ConsoleContext
from server.console.pages.fleet import SVG_HEADERS
from server.console.projection import CONSENT_FIELD
from server.console.render import render

TOP = 25


def router() -> APIRouter:
    """``/fields`` and one chart per field."""
    api = APIRouter()

    @api.get("/fields", response_class=HTMLResponse)
    def fields(request: Request, _who: Viewer) -> Response:
        ctx: ConsoleContext = request.app.state.ctx
        ctx.projection.catch_up(now=ctx.now())
        counts = ctx.fleet.value_counts(top=TOP)
        manifest = ctx.manifest()
        return render(
            request,
            "fields.html",
            {
                "catalog": sorted(CATALOG.values(), key=lambda f: f.id),
                "counts": counts,
                "distinct": ctx.fleet.distinct_values(),
                "manifest": manifest,
                "versions": counts.get(CONSENT_FIELD, []),
                "consent_field": CONSENT_FIELD,
                "charted": ("timezone.iana", "baseurl.tools", "baseurl.env", "proxy.tunnels"),
            },
        )

    @api.get("/charts/field/{field_id}.svg")
    def field_svg(request: Request, field_id: str, _who: Viewer) -> Response:
        ctx: ConsoleContext = request.app.state.ctx
        if field_id not in CATALOG:
            return Response(status_code=404)
        rows = ctx.fleet.value_counts(top=12).get(field_id, [])
        svg = charts.distribution_chart(f"{field_id}: devices per value", rows)
        return Response(svg, media_type="image/svg+xml", headers=SVG_HEADERS)

    return api
