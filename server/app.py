"""The verifier's ASGI application: error handling, limits, and the route modules."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from attest import __version__
from server.api import device, operations, protocol, relying, tokenstatus
from server.api.attestation import attestation_routes
from server.api.bodies import MalformedBodyError
from server.api.docs import install_docs
from server.edge import EdgeLayer
from server.errors import BadRequestError, ProblemError
from server.fastroutes import FastRoutes
from server.limits import ClientAddresses, parse_trusted_proxies
from server.openapi import install_openapi
from server.ratelimit import RateLimits
from server.runtime import Runtime, build_runtime

PROBLEM_JSON = "application/problem+json"

__all__ = ["build_runtime", "create_app", "problem_response"]


def problem_response(error: ProblemError) -> JSONResponse:
    """An RFC 9457 answer."""
    return JSONResponse(
        error.to_problem(),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=error.response_headers() or None,
    )


class _HttpProblem(ProblemError):
    """Routing errors (404, 405) from the framework, as problem documents."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status  # type: ignore[misc]
        self.slug = "not-found" if status == 404 else "http-error"  # type: ignore[misc]
        self.title = detail  # type: ignore[misc]


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(_request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        detail = f"{where or 'body'}: {first.get('msg', 'invalid')}; fix the request body"
        return problem_response(BadRequestError(detail))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, MalformedBodyError):
            return problem_response(BadRequestError(str(exc.detail)))
        return problem_response(_HttpProblem(exc.status_code, str(exc.detail)))


def fast_routes(runtime: Runtime) -> FastRoutes:
    """The hot paths the edge layer answers itself (``server.fastroutes``)."""
    return {**attestation_routes(runtime.verifier), **relying.fast_routes(runtime)}


class VerifierApp(FastAPI):
    """FastAPI with the edge layer (``server.edge``) in front of its whole stack.

    The edge layer is the outermost ASGI layer, not a FastAPI middleware: the hot paths it
    answers itself then skip the framework's own wrappers (error middleware, body limit,
    routing) altogether, and everything else reaches FastAPI through it unchanged."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.edge: EdgeLayer | None = None

    def install_edge(self, **settings: Any) -> None:
        """Put the edge layer in front; ``settings`` are ``EdgeLayer``'s keyword arguments."""
        self.edge = EdgeLayer(super().__call__, **settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.edge is None:
            await super().__call__(scope, receive, send)
        else:
            await self.edge(scope, receive, send)


def create_app(runtime: Runtime) -> VerifierApp:
    """The verifier's ASGI application."""
    app = VerifierApp(
        title="envattest verifier",
        version=__version__,
        description="Consent-first environment attestation: protocol v1.",
        docs_url=None,  # served by install_docs from local assets
        redoc_url=None,
        # OpenTelemetry off: /metrics is the monitoring, and the check costs every request
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = runtime
    _install_error_handlers(app)
    paths: set[str] = set()
    for module in (protocol, device, relying, tokenstatus, operations):
        api = module.router(runtime)
        paths.update(str(getattr(route, "path", "")) for route in api.routes)
        app.include_router(api)
    install_openapi(app)
    install_docs(app)
    config = runtime.config
    app.install_edge(
        addresses=ClientAddresses(parse_trusted_proxies(config.trusted_proxies)),
        limits=RateLimits(per_address=runtime.ip_limiter, per_device=runtime.device_limiter),
        metrics=runtime.metrics,
        routes=paths,
        max_body_bytes=config.max_body_bytes,
        body_timeout_s=config.body_timeout_s,
        fast_routes=fast_routes(runtime),
    )
    return app
