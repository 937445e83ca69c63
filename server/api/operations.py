"""Operations: liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter

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

    return api
