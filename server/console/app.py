"""The console's ASGI application and its server (``envattest-server console``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.console import auth
from server.console.auth import CsrfError, SignInRequired
from server.console.context import ConsoleContext
from server.console.pages import alerts, audit, devices, fields, fleet
from server.console.render import render
from server.errors import ServerError

log = logging.getLogger("envattest.console")
STATIC = Path(__file__).with_name("static")
# everything from this origin; no inline script at all; charts are same-origin images
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


class SecurityHeaders:
    """CSP and friends on every answer (SVG charts set their own, stricter CSP)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in (
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ):
                    if name not in present:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def create_console_app(ctx: ConsoleContext) -> FastAPI:
    """Sign-in plus the read-only pages; no API docs (the verifier serves those)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, title="envattest console")
    app.state.ctx = ctx
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(auth.router())
    for module in (fleet, devices, fields, audit, alerts):
        app.include_router(module.router())

    @app.exception_handler(SignInRequired)
    async def _sign_in(_request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse("/login?" + urlencode({"reason": exc.reason}), status_code=303)

    @app.exception_handler(CsrfError)
    async def _csrf(request: Request, exc: CsrfError) -> Response:
        return render(request, "error.html", {"message": str(exc)}, status=403)

    @app.exception_handler(ServerError)
    async def _server_error(request: Request, exc: ServerError) -> Response:
        log.error("console: %s", exc)
        return render(request, "error.html", {"message": str(exc)}, status=503)

    app.add_middleware(SecurityHeaders)
    return app


@dataclass(frozen=True)
class ConsoleOptions:
    """Where the console listens."""

    host: str = "127.0.0.1"
    port: int = 8081
    tls_cert: str | None = None
    tls_key: str | None = None
    log_level: str = "info"
    log_format: str = "text"


def serve_console(ctx: ConsoleContext, options: ConsoleOptions) -> None:
    """Serve the console until SIGTERM/SIGINT, with the audit follower running beside it."""
    import uvicorn

    from server.alerts.worker import build_follower

    follower = build_follower(ctx.store.engine, ctx.alert_settings, ctx.metrics)
    follower.start()
    server = uvicorn.Server(
        uvicorn.Config(
            create_console_app(ctx),
            host=options.host,
            port=options.port,
            log_config=None,
            log_level=options.log_level,
            ssl_certfile=options.tls_cert,
            ssl_keyfile=options.tls_key,
            access_log=False,
        )
    )
    log.info("envattest console on %s:%d", options.host, options.port)
    try:
        server.run()
    finally:
        follower.stop()
        ctx.store.engine.dispose()
