"""Relying parties: token introspection (RFC 7662) and forward auth for gateways.

Both handlers run on the event loop without the shared thread pool: the checks in
``server.introspection`` reach the database only through batched dedicated threads.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from attest.errors import FormatError
from attest.strictjson import parse_json
from server.access.proofs import RequestTarget, original_request
from server.api.bodies import parse_form
from server.api.models import IntrospectionResponse
from server.credentials import authenticate_gateway
from server.errors import AccessDeniedError, BadRequestError, UnsupportedMediaError
from server.introspection import InactiveTokenError, Presented, presented_credential
from server.openapi import problem_responses
from server.runtime import Runtime
from server.usage.networks import client_network

FORM = "application/x-www-form-urlencoded"
_FIELDS = ("token", "token_type_hint", "dpop", "htm", "htu")
_BODY_SCHEMA = {
    "type": "object",
    "required": ["token"],
    "properties": {
        "token": {"type": "string"},
        "token_type_hint": {"type": "string"},
        "dpop": {"type": "string", "description": "the client's DPoP proof (DPoP-bound tokens)"},
        "htm": {"type": "string", "description": "the client request's method"},
        "htu": {"type": "string", "description": "the client request's absolute URL"},
    },
}
_INTROSPECT_BODY = {
    "requestBody": {
        "required": True,
        "content": {FORM: {"schema": _BODY_SCHEMA}, "application/json": {"schema": _BODY_SCHEMA}},
    }
}
_AUTHZ_HEADERS = {
    name: {"schema": {"type": "string"}, "description": description}
    for name, description in (
        ("X-Envattest-Device", "device id (token sub)"),
        ("X-Envattest-Key-Class", "key class the verifier decided at enrollment"),
        ("X-Envattest-Policy-Version", "policy version the token was issued under"),
        ("X-Envattest-Binding", "dpop (possession proven on this request) or bearer"),
    )
}
_AUTHZ_EXTRA = {
    "parameters": [
        {
            "name": "aud",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "maxLength": 256},
            "description": "required token audience; ignored when the verifier configures "
            "authz_audience (the configured one always wins)",
        }
    ]
}


def _introspection_fields(body: bytes, content_type: str) -> dict[str, str]:
    media = content_type.split(";")[0].strip().lower()
    if media == FORM:
        form = parse_form(body, what="introspection form")
        fields = {k: v for k, v in form.items() if k in _FIELDS}
    elif media == "application/json":
        try:
            doc = parse_json(body, what="introspection body")
        except FormatError as exc:
            raise BadRequestError(f'{exc}; send {{"token": "..."}}') from None
        if not isinstance(doc, dict):
            raise BadRequestError('the body must be a JSON object: {"token": "..."}')
        fields = {k: v for k, v in doc.items() if k in _FIELDS and isinstance(v, str)}
    else:
        raise UnsupportedMediaError(f"send the body as {FORM} (token=...) or application/json")
    if not fields.get("token"):
        raise BadRequestError("the 'token' parameter is required (RFC 7662)")
    return fields


def router(runtime: Runtime) -> APIRouter:
    """Introspection and forward-auth routes."""
    api = APIRouter(tags=["relying party"])
    access = runtime.access
    checks = runtime.metrics.token_checks
    refusals = runtime.metrics.token_refusals
    api.add_event_handler("startup", access.start)
    api.add_event_handler("shutdown", access.stop)

    @api.post(
        "/v1/introspect",
        response_model=IntrospectionResponse,
        response_model_exclude_none=True,
        openapi_extra=_INTROSPECT_BODY,
        responses=problem_responses(400, 401, 413, 415, 429, 503),
    )
    async def introspect(request: Request) -> IntrospectionResponse:
        """RFC 7662 token introspection; needs a gateway credential (Basic or Bearer). For a
        DPoP-bound token the gateway also passes the client's proof (``dpop``) and request
        (``htm``, ``htu``); without them such a token is inactive."""
        await authenticate_gateway(access.rows.credential, request.headers.get("authorization"))
        fields = _introspection_fields(
            await request.body(), request.headers.get("content-type", "")
        )
        proof = fields.get("dpop")
        presented = Presented("dpop" if proof else "bearer", fields["token"], proof)

        def target() -> RequestTarget:
            return RequestTarget(htm=fields.get("htm", ""), htu=fields.get("htu", ""))

        try:
            active = await access.checker.check(presented, target=target)
        except InactiveTokenError as exc:
            refusals.labels("introspect", exc.step).inc()
            checks.labels("introspect", "inactive").inc()
            return IntrospectionResponse(active=False)
        checks.labels("introspect", "active").inc()
        return IntrospectionResponse(**active.introspection())

    async def authz(request: Request) -> Response:
        headers = request.headers
        envoy_path = request.path_params.get("original")

        def target() -> RequestTarget:
            return original_request(
                external_url=access.external_url,
                original_method=headers.get("x-original-method")
                or headers.get("x-forwarded-method"),
                original_uri=headers.get("x-original-uri") or headers.get("x-forwarded-uri"),
                envoy_path=envoy_path,
                request_method=request.method,
            )

        # behind Envoy the query string is the client's own: never an audience source there
        requested = request.query_params.get("aud") if envoy_path is None else None
        try:
            presented = presented_credential(
                headers.get("authorization"), headers.get("x-api-key"), headers.getlist("dpop")
            )
            active = await access.checker.check(
                presented, target=target, requested_audience=requested
            )
            # the edge layer resolved the client through the trusted proxies (server.limits)
            address = request.client.host if request.client else None
            access.usage.check(
                device_id=active.device.device_id,
                jti=str(active.claims["jti"]),
                exp=int(active.claims["exp"]),
                network=client_network(address) if address else None,
            )
        except InactiveTokenError as exc:
            refusals.labels("authz", exc.step).inc()
            checks.labels("authz", "denied").inc()
            raise
        except AccessDeniedError:
            refusals.labels("authz", "usage").inc()
            checks.labels("authz", "denied").inc()
            raise
        checks.labels("authz", "allowed").inc()
        return Response(
            status_code=204,
            headers={
                "X-Envattest-Device": active.device.device_id,
                "X-Envattest-Key-Class": active.device.key_class,
                "X-Envattest-Policy-Version": str(active.claims.get("policy_version", "")),
                "X-Envattest-Binding": "dpop" if presented.scheme == "dpop" else "bearer",
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
        "204 with identity headers for a valid token from an active device, else 401 (403 "
        "when a usage rule denies). A DPoP-bound token needs Authorization: DPoP, a DPoP "
        "proof header, and the gateway's X-Original-Method and X-Original-URI.",
        openapi_extra=_AUTHZ_EXTRA,
        responses={
            204: {"description": "token valid, device active", "headers": _AUTHZ_HEADERS},
            **problem_responses(400, 401, 403, 429, 503),
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
