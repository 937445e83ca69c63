"""Alerts: what was raised, and for each webhook whether it was delivered, is being retried,
or failed (with the last error)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from server.console.auth import Viewer
from server.console.context import ConsoleContext
from server.console.render import render


def router() -> APIRouter:
    """``/alerts``."""
    api = APIRouter()

    @api.get("/alerts", response_class=HTMLResponse)
    def alerts(request: Request, _who: Viewer, before: int | None = None) -> Response:
        ctx: ConsoleContext = request.app.state.ctx
        ctx.projection.catch_up(now=ctx.now())
        rows = ctx.alerts.recent(limit=100, before_id=before)
        # a webhook URL may carry its secret (Slack): show the host only
        hooks = [
            (w.name, w.format, urlsplit(w.url).hostname or "") for w in ctx.alert_settings.webhooks
        ]
        return render(
            request,
            "alerts.html",
            {
                "rows": rows,
                "states": ctx.alerts.states(),
                "hooks": hooks,
                "next_before": rows[-1].event_id if len(rows) == 100 else None,
            },
        )

    return api
