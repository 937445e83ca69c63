"""Token status for the token's holder: is the access token I hold still good?

The agent asks before it serves a cached token, so a device revoked at the verifier learns it
at its next ``envattest token`` call and can tell the user how to recover. Read-only, grants
nothing: it answers only what the bearer of the token could learn by using it at a gateway.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from server.introspection import InactiveTokenError, bearer_token
from server.openapi import problem_responses
from server.runtime import Runtime

DEVICE_INACTIVE = (
    "the verifier no longer accepts this device (revoked by an administrator, or erased with "
    "'envattest forget'); to enroll again, get a new enrollment token from your administrator, "
    "then run 'envattest forget --local' and 'envattest init --server URL --enroll-token TOKEN'"
)


async def token_status(runtime: Runtime, token: str) -> dict[str, Any]:
    """The status document for ``token`` (never raises for an inactive token)."""
    try:
        active = await runtime.access.checker.status(token)
    except InactiveTokenError as exc:
        if exc.step == "device":
            return {"active": False, "state": "device-inactive", "detail": DEVICE_INACTIVE}
        return {"active": False, "state": "refresh", "detail": "run 'envattest attest'"}
    return {"active": True, "state": "active", "exp": active.claims.get("exp")}


def router(runtime: Runtime) -> APIRouter:
    """The token-status route."""
    api = APIRouter(tags=["device"])

    @api.get("/v1/token/status", responses=problem_responses(400, 413, 429, 503))
    async def status(request: Request) -> dict[str, Any]:
        """Whether the bearer's access token is still active, and if not, what to do."""
        token = bearer_token(request.headers.get("authorization"), None)
        return await token_status(runtime, token)

    return api


__all__ = ["DEVICE_INACTIVE", "router", "token_status"]
