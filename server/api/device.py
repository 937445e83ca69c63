"""Device self-service: ``whoami`` and ``forget``, signed by the device key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from attest.devicerequest import REQUEST_TYP, DeviceAction
from server.api.protocol import require_media_type
from server.runtime import Runtime

REQUEST_MEDIA_TYPE = f"application/{REQUEST_TYP}"
_BODY = {
    "requestBody": {
        "required": True,
        "content": {REQUEST_MEDIA_TYPE: {"schema": {"type": "string"}}},
    }
}


def router(runtime: Runtime) -> APIRouter:
    """The device self-service routes."""
    api = APIRouter(tags=["device"])

    @api.post("/v1/device/whoami", openapi_extra=_BODY)
    async def whoami(request: Request) -> dict[str, Any]:
        """Everything the verifier holds about the calling device."""
        require_media_type(request, REQUEST_MEDIA_TYPE)
        body = await request.body()
        device = await run_in_threadpool(
            runtime.devices.authenticate, body, action=DeviceAction.WHOAMI
        )
        return await run_in_threadpool(runtime.devices.whoami, device)

    @api.post("/v1/device/forget", openapi_extra=_BODY)
    async def forget(request: Request) -> dict[str, Any]:
        """Revoke the calling device and erase its signal history."""
        require_media_type(request, REQUEST_MEDIA_TYPE)
        body = await request.body()
        device = await run_in_threadpool(
            runtime.devices.authenticate, body, action=DeviceAction.FORGET
        )
        return await run_in_threadpool(runtime.devices.forget, device)

    return api
