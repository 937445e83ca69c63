"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from server.metrics import CONTENT_TYPE_LATEST
from server.runtime import Runtime


def router(runtime: Runtime) -> APIRouter:
    """Health routes."""
    api = APIRouter(tags=["operations"])

    @api.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @api.get("/readyz")
    def readyz() -> dict[str, str]:
        """Readiness: the database answers."""
        runtime.store.ping()
        return {"status": "ready"}

    if runtime.config.metrics_listen:  # served on its own address by ``serve``
        return api

    @api.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    def metrics() -> Response:
        """Prometheus metrics of this process (scrape every replica)."""
        return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return api
