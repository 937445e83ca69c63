"""POST /v1/challenge and POST /v1/attest: the attestation cycle's hot paths.

Answered by the edge layer on the event loop (``server.fastroutes``), without the framework
or a thread: the body is parsed at the boundary (strict JSON, the request model), the
verifier awaits the device row and the group commit. ``server.api.protocol`` declares the
same paths for the OpenAPI document and calls these same functions.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import Scope

from attest.errors import FormatError
from attest.strictjson import parse_json
from server.api.models import ChallengeRequest
from server.errors import BadRequestError, UnsupportedMediaError
from server.fastroutes import FastRoutes, Reply, header, json_reply
from server.tokens import token_type
from server.verifier import Verifier

EVIDENCE_MEDIA_TYPE = "application/eat+jwt"


def media_type(scope: Scope) -> str:
    """The declared media type of the body, lower case, without parameters."""
    return header(scope, b"content-type").split(";")[0].strip().lower()


def _is_json(media: str) -> bool:
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def parse_challenge_request(scope: Scope, body: bytes) -> ChallengeRequest:
    """The body of POST /v1/challenge, or a 400 naming what to fix (as every JSON route)."""
    if not body:
        raise BadRequestError("body: Field required; fix the request body")
    media = media_type(scope)
    if media and not _is_json(media):
        raise BadRequestError(
            "body: Input should be a valid dictionary or object to extract fields from; "
            "send it as Content-Type application/json"
        )
    try:
        document = parse_json(body, what="request body")
    except FormatError as exc:
        raise BadRequestError(str(exc)) from None
    try:
        return ChallengeRequest.model_validate(document)
    except ValidationError as exc:
        first: Any = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise BadRequestError(
            f"{where or 'body'}: {first.get('msg', 'invalid')}; fix the request body"
        ) from None


async def answer_challenge(verifier: Verifier, request: ChallengeRequest) -> Reply:
    """A single-use nonce bound to the device."""
    issued = await verifier.challenge(request.device_id)
    return json_reply({"nonce": issued.nonce, "expires_in": issued.expires_in})


async def answer_attest(verifier: Verifier, scope: Scope, body: bytes) -> Reply:
    """Verify evidence; on allow, the access token."""
    if media_type(scope) != EVIDENCE_MEDIA_TYPE:
        raise UnsupportedMediaError(f"send the body as Content-Type {EVIDENCE_MEDIA_TYPE}")
    outcome = await verifier.attest(body)
    token = outcome.token
    return json_reply(
        {
            "decision": "allow",
            "reasons": outcome.decision.reasons,
            "access_token": token.token,
            "token_type": token_type(token.claims),
            "expires_in": token.expires_in,
        }
    )


def attestation_routes(verifier: Verifier) -> FastRoutes:
    """The two hot paths, for ``server.app.fast_routes``."""

    async def challenge(scope: Scope, body: bytes) -> Reply:
        return await answer_challenge(verifier, parse_challenge_request(scope, body))

    async def attest(scope: Scope, body: bytes) -> Reply:
        return await answer_attest(verifier, scope, body)

    return {("POST", "/v1/challenge"): challenge, ("POST", "/v1/attest"): attest}


def as_response(reply: Reply) -> Response:
    """A reply as a framework response (the OpenAPI declarations of the same paths)."""
    media = reply.media_type.decode() if reply.media_type is not None else None
    response = Response(reply.body, status_code=reply.status, media_type=media)
    for name, value in reply.headers:
        response.headers.append(name.decode("latin-1"), value.decode("latin-1"))
    return response
