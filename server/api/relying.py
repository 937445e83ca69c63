"""Relying parties: token introspection (RFC 7662) and forward auth for gateways.

One implementation, ``RelyingParty``, answers both as hot paths of the edge layer
(``server.fastroutes``: no framework, no thread-pool hop; the checks in
``server.introspection`` reach the database only through batched dedicated threads). The
FastAPI routes below document them in the OpenAPI description and serve Envoy's
``/v1/authz/<original path>`` form, calling the same ``RelyingParty``.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.types import Scope

from attest.errors import FormatError
from attest.manifest import Manifest
from attest.strictjson import parse_json
from server.access.proofs import RequestTarget, original_request
from server.api.bodies import parse_form
from server.api.models import IntrospectionResponse
from server.credentials import authenticate_gateway
from server.errors import AccessDeniedError, BadRequestError, UnsupportedMediaError
from server.fastroutes import FastRoutes, Reply, json_reply
from server.introspection import InactiveTokenError, Presented, presented_credential
from server.openapi import problem_responses
from server.runtime import Runtime
from server.store.gateways import GatewayCredentialRecord
from server.usage.fields import usage_disclosed
from server.usage.networks import client_network

FORM = "application/x-www-form-urlencoded"
AUTHZ = "/v1/authz"
ENVOY_PREFIX = AUTHZ + "/"  # Envoy ext_authz appends the original path to its path_prefix
INTROSPECT = "/v1/introspect"
AUTHZ_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_NO_STORE = (b"cache-control", b"no-store")
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


class _Headers:
    """The request headers forward auth and introspection read, in one pass (ASGI names
    are lower case; the first value counts, except ``DPoP`` which must appear once)."""

    __slots__ = ("api_key", "authorization", "content_type", "dpop", "method", "uri")

    def __init__(self, scope: Scope) -> None:
        self.authorization: str | None = None
        self.api_key: str | None = None
        self.content_type = ""
        self.method: str | None = None
        self.uri: str | None = None
        self.dpop: list[str] = []
        for raw_name, raw_value in scope["headers"]:
            name = bytes(raw_name)
            if name == b"authorization":
                if self.authorization is None:
                    self.authorization = bytes(raw_value).decode("latin-1")
            elif name == b"x-api-key":
                if self.api_key is None:
                    self.api_key = bytes(raw_value).decode("latin-1")
            elif name == b"dpop":
                self.dpop.append(bytes(raw_value).decode("latin-1"))
            elif name == b"x-original-method":
                if self.method is None:
                    self.method = bytes(raw_value).decode("latin-1")
            elif name == b"x-original-uri":
                if self.uri is None:
                    self.uri = bytes(raw_value).decode("latin-1")
            elif name == b"content-type" and not self.content_type:
                self.content_type = bytes(raw_value).decode("latin-1")


def _query_audience(scope: Scope) -> str | None:
    """The ``aud`` query parameter (the last one, as the framework reads it), or None."""
    query = bytes(scope.get("query_string", b""))
    if b"aud" not in query:
        return None
    values = [
        v for k, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True) if k == "aud"
    ]
    return values[-1] if values else None


class RelyingParty:
    """Forward auth and introspection: ``authz`` and ``introspect`` take the ASGI scope and
    the whole body (bounded by the edge layer) and return the reply or raise ProblemError."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._access = runtime.access
        checks = runtime.metrics.token_checks
        self._refusals = runtime.metrics.token_refusals
        # counter children resolved once: labels() takes a lock and a dict lookup per call
        self._allowed = checks.labels("authz", "allowed")
        self._denied = checks.labels("authz", "denied")
        self._active = checks.labels("introspect", "active")
        self._inactive = checks.labels("introspect", "inactive")
        self._usage_refused = self._refusals.labels("authz", "usage")
        self._usage_manifest: Manifest | None = None
        self._usage_on = False

    def _usage_recorded(self) -> bool:
        manifest = self._runtime.manifest  # replaced whole on reload: compare identity
        if manifest is not self._usage_manifest:
            self._usage_on = usage_disclosed(manifest)
            self._usage_manifest = manifest
        return self._usage_on

    async def authz(self, scope: Scope, body: bytes) -> Reply:
        """Forward auth: 204 with identity headers, or raise (401, 403 for a usage rule)."""
        del body  # forward auth reads headers only
        access = self._access
        headers = _Headers(scope)
        path = str(scope["path"])
        envoy_path = path[len(ENVOY_PREFIX) :] if path.startswith(ENVOY_PREFIX) else None

        def target() -> RequestTarget:
            return original_request(
                external_url=access.external_url,
                original_method=headers.method,
                original_uri=headers.uri,
                envoy_path=envoy_path,
                request_method=str(scope["method"]),
            )

        # behind Envoy the query string is the client's own: never an audience source there
        requested = _query_audience(scope) if envoy_path is None else None
        try:
            presented = presented_credential(headers.authorization, headers.api_key, headers.dpop)
            active = await access.checker.check(
                presented, target=target, requested_audience=requested
            )
            # (9) usage, recorded only when the manifest declares it (verifier-observed); the
            #     edge layer resolved the client through the trusted proxies (server.limits)
            if self._usage_recorded():
                client = scope.get("client")
                access.usage.check(
                    device_id=active.device.device_id,
                    jti=str(active.claims["jti"]),
                    exp=int(active.claims["exp"]),
                    network=client_network(client[0]) if client else None,
                )
        except InactiveTokenError as exc:
            self._refusals.labels("authz", exc.step).inc()
            self._denied.inc()
            raise
        except AccessDeniedError:
            self._usage_refused.inc()
            self._denied.inc()
            raise
        self._allowed.inc()
        device = active.device
        return Reply(
            204,
            media_type=None,
            headers=(
                (b"x-envattest-device", device.device_id.encode()),
                (b"x-envattest-key-class", device.key_class.encode()),
                (
                    b"x-envattest-policy-version",
                    str(active.claims.get("policy_version", "")).encode(),
                ),
                (b"x-envattest-binding", b"dpop" if presented.scheme == "dpop" else b"bearer"),
                _NO_STORE,
            ),
        )

    async def introspect(self, scope: Scope, body: bytes) -> Reply:
        """RFC 7662: the token's claims if active, else ``{"active": false}``."""
        headers = _Headers(scope)
        rows = self._access.rows
        epoch = await rows.epoch()  # one revocation-epoch read for the credential and device

        async def credential(credential_id: str) -> GatewayCredentialRecord | None:
            return await rows.credential(credential_id, epoch=epoch)

        await authenticate_gateway(credential, headers.authorization)
        fields = _introspection_fields(body, headers.content_type)
        proof = fields.get("dpop")
        presented = Presented("dpop" if proof else "bearer", fields["token"], proof)

        def target() -> RequestTarget:
            return RequestTarget(htm=fields.get("htm", ""), htu=fields.get("htu", ""))

        try:
            active = await self._access.checker.check(presented, target=target, epoch=epoch)
        except InactiveTokenError as exc:
            self._refusals.labels("introspect", exc.step).inc()
            self._inactive.inc()
            return json_reply({"active": False})
        self._active.inc()
        answer = {k: v for k, v in active.introspection().items() if v is not None}
        return json_reply(answer)


def fast_routes(runtime: Runtime) -> FastRoutes:
    """Forward auth (every method a gateway may forward) and introspection, for the edge."""
    party = RelyingParty(runtime)
    routes = {(method, AUTHZ): party.authz for method in AUTHZ_METHODS}
    routes[("POST", INTROSPECT)] = party.introspect
    return routes


def _response(reply: Reply) -> Response:
    return Response(
        reply.body,
        status_code=reply.status,
        headers={k.decode(): v.decode("latin-1") for k, v in reply.headers},
        media_type=reply.media_type.decode() if reply.media_type else None,
    )


def router(runtime: Runtime) -> APIRouter:
    """The OpenAPI description of both routes, and Envoy's forward-auth paths; every one
    answers through the same ``RelyingParty`` as the edge layer."""
    api = APIRouter(tags=["relying party"])
    access = runtime.access
    party = RelyingParty(runtime)
    api.add_event_handler("startup", access.start)
    api.add_event_handler("shutdown", access.stop)

    @api.post(
        INTROSPECT,
        response_model=IntrospectionResponse,
        response_model_exclude_none=True,
        openapi_extra=_INTROSPECT_BODY,
        responses=problem_responses(400, 401, 413, 415, 429, 503),
    )
    async def introspect(request: Request) -> Response:
        """RFC 7662 token introspection; needs a gateway credential (Basic or Bearer). For a
        DPoP-bound token the gateway also passes the client's proof (``dpop``) and request
        (``htm``, ``htu``); without them such a token is inactive."""
        return _response(await party.introspect(request.scope, await request.body()))

    async def authz(request: Request) -> Response:
        return _response(await party.authz(request.scope, b""))

    api.add_api_route(
        AUTHZ,
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
    for path, methods in ((AUTHZ, AUTHZ_METHODS[1:]), (AUTHZ + "/{original:path}", AUTHZ_METHODS)):
        api.add_api_route(
            path,
            authz,
            methods=list(methods),
            include_in_schema=False,
            status_code=204,
            response_class=Response,
        )
    return api


__all__ = ["RelyingParty", "fast_routes", "router"]
