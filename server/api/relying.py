"""Relying parties: token introspection (RFC 7662) and forward auth for gateways."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from attest.errors import FormatError
from attest.strictjson import parse_json
from server.api.bodies import parse_form
from server.api.models import IntrospectionResponse
from server.credentials import authenticate_gateway
from server.errors import BadRequestError, UnsupportedMediaError
from server.introspection import ActiveToken, InactiveTokenError, bearer_token, check_access_token
from server.openapi import problem_responses
from server.runtime import Runtime

FORM = "application/x-www-form-urlencoded"
_INTROSPECT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            FORM: {
                "schema": {
                    "type": "object",
                    "required": ["token"],
                    "properties": {
                        "token": {"type": "string"},
                        "token_type_hint": {"type": "string"},
                    },
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["token"],
                    "properties": {
                        "token": {"type": "string"},
                        "token_type_hint": {"type": "string"},
                    },
                }
            },
        },
    }
}
_AUTHZ_HEADERS = {
    name: {"schema": {"type": "string"}, "description": description}
    for name, description in (
        ("X-Envattest-Device", "device id (token sub)"),
        ("X-Envattest-Key-Class", "key class the verifier decided at enrollment"),
        ("X-Envattest-Policy-Version", "policy version the token was issued under"),
    )
}


def _token_from_body(body: bytes, content_type: str) -> str:
    media = content_type.split(";")[0].strip().lower()
    if media == FORM:
        token = parse_form(body, what="introspection form").get("token")
    elif media == "application/json":
        try:
            doc = parse_json(body, what="introspection body")
        except FormatError as exc:
            raise BadRequestError(f'{exc}; send {{"token": "..."}}') from None
        token = doc.get("token") if isinstance(doc, dict) else None
    else:
        raise UnsupportedMediaError(f"send the body as {FORM} (token=...) or application/json")
    if not isinstance(token, str) or not token:
        raise BadRequestError("the 'token' parameter is required (RFC 7662)")
    return token


def router(runtime: Runtime) -> APIRouter:
    """Introspection and forward-auth routes."""
    api = APIRouter(tags=["relying party"])
    checks = runtime.metrics.token_checks

    def check(token: str, audience: str | None) -> ActiveToken:
        return check_access_token(
            token,
            issuer=runtime.issuer,
            store=runtime.store,
            audience=audience or runtime.config.authz_audience or None,
        )

    @api.post(
        "/v1/introspect",
        response_model=IntrospectionResponse,
        response_model_exclude_none=True,
        openapi_extra=_INTROSPECT_BODY,
        responses=problem_responses(400, 401, 413, 415, 429, 503),
    )
    async def introspect(request: Request) -> IntrospectionResponse:
        """RFC 7662 token introspection; needs a gateway credential (Basic or Bearer)."""
        await run_in_threadpool(
            authenticate_gateway, runtime.store, request.headers.get("authorization")
        )
        token = _token_from_body(await request.body(), request.headers.get("content-type", ""))
        try:
            active = await run_in_threadpool(check, token, None)
        except InactiveTokenError:
            checks.labels("introspect", "inactive").inc()
            return IntrospectionResponse(active=False)
        checks.labels("introspect", "active").inc()
        return IntrospectionResponse(**active.introspection())

    def authz(
        request: Request,
        aud: str | None = Query(
            default=None, max_length=256, description="required token audience"
        ),
    ) -> Response:
        token = bearer_token(request.headers.get("authorization"), request.headers.get("x-api-key"))
        try:
            active = check(token, aud)
        except InactiveTokenError:
            checks.labels("authz", "denied").inc()
            raise
        checks.labels("authz", "allowed").inc()
        return Response(
            status_code=204,
            headers={
                "X-Envattest-Device": active.device.device_id,
                "X-Envattest-Key-Class": active.device.key_class,
                "X-Envattest-Policy-Version": str(active.claims.get("policy_version", "")),
                "Cache-Control": "no-store",
            },
        )

    api.add_api_route(
        "/v1/authz",
        authz,
        methods=["GET"],
        status_code=204,
        response_class=Response,
        summary="Forward auth",
        description="Forward auth (nginx auth_request, Envoy ext_authz, Traefik/Caddy): "
        "204 with identity headers for a valid token from an active device, else 401.",
        responses={
            204: {"description": "token valid, device active", "headers": _AUTHZ_HEADERS},
            **problem_responses(400, 401, 429, 503),
        },
    )
    # gateways forward the original method (Traefik, Envoy), and Envoy's ext_authz appends
    # the original path to its path_prefix: answer all of those, document GET /v1/authz
    every = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    for path, methods in (("/v1/authz", every[1:]), ("/v1/authz/{original:path}", every)):
        api.add_api_route(
            path,
            authz,
            methods=methods,
            include_in_schema=False,
            status_code=204,
            response_class=Response,
        )
    return api


__all__ = ["router"]
