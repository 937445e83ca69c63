"""The HTTP API (protocol v1). Handlers are thin: parse, call the library, answer."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from attest import __version__
from attest.manifest import Manifest, parse_manifest
from server.config import ServerConfig
from server.enrollment import Enrollment
from server.errors import (
    BadRequestError,
    ProblemError,
    UnsupportedMediaError,
)
from server.limits import BodyLimitMiddleware
from server.policy import Policy
from server.policy.defaults import default_policy
from server.store.sql import SqlStore, make_engine
from server.tokens import KeyRing, TokenIssuer
from server.verifier import Verifier

PROBLEM_JSON = "application/problem+json"
EVIDENCE_MEDIA_TYPE = "application/eat+jwt"


class EnrollRequest(BaseModel):
    """Body of POST /v1/enroll."""

    model_config = ConfigDict(extra="forbid")
    enrollment_token: str = Field(min_length=1, max_length=256)
    public_jwk: dict[str, str]
    key_attestation: dict[str, Any]
    nonce: str | None = Field(default=None, max_length=128)


class EnrollResponse(BaseModel):
    """A completed enrollment."""

    device_id: str
    key_class: str


class ChallengeRequest(BaseModel):
    """Body of POST /v1/challenge."""

    model_config = ConfigDict(extra="forbid")
    device_id: str = Field(min_length=1, max_length=64)


class ChallengeResponse(BaseModel):
    """A fresh nonce."""

    nonce: str
    expires_in: int


class AttestResponse(BaseModel):
    """An allow decision with its access token."""

    decision: str
    reasons: list[str]
    access_token: str
    token_type: str
    expires_in: int


def load_policy_file(config: ServerConfig) -> Policy:
    """The policy in the data directory, or the built-in default if there is none."""
    if not config.policy_path.exists():
        return default_policy()
    from server.policy.loader import load_policy

    policy: Policy = load_policy(config.policy_path)
    return policy


@dataclass
class LiveDocuments:
    """Manifest and policy: replaced as a whole on reload (SIGHUP), read per request."""

    manifest: Manifest
    policy: Policy


@dataclass(frozen=True)
class Runtime:
    """What the handlers use."""

    config: ServerConfig
    store: SqlStore
    live: LiveDocuments
    verifier: Verifier
    enrollment: Enrollment
    issuer: TokenIssuer

    @property
    def manifest(self) -> Manifest:
        """The manifest in force."""
        return self.live.manifest

    def reload(self) -> None:
        """Re-read manifest and policy; on any error keep the ones in force."""
        manifest = parse_manifest(self.config.manifest_path.read_bytes())
        policy = load_policy_file(self.config)
        self.live.manifest, self.live.policy = manifest, policy


def build_runtime(config: ServerConfig, *, clock: Callable[[], float] = time.time) -> Runtime:
    """Open the database, load keys, manifest and policy."""
    store = SqlStore(make_engine(config.resolved_database_url), clock=clock)
    live = LiveDocuments(
        manifest=parse_manifest(config.manifest_path.read_bytes()),
        policy=load_policy_file(config),
    )
    issuer = TokenIssuer(KeyRing.load(config.keys_dir), issuer=config.issuer, clock=clock)
    verifier = Verifier(
        store=store,
        issuer=issuer,
        manifest=lambda: live.manifest,
        policy=lambda: live.policy,
        nonce_ttl_s=config.nonce_ttl_s,
        max_iat_skew_s=config.max_iat_skew_s,
        clock=clock,
    )
    return Runtime(
        config=config,
        store=store,
        live=live,
        verifier=verifier,
        enrollment=Enrollment(store, clock=clock),
        issuer=issuer,
    )


def problem_response(error: ProblemError) -> JSONResponse:
    """An RFC 9457 answer."""
    headers = {"Retry-After": str(error.retry_after_s)} if error.retry_after_s else None
    return JSONResponse(
        error.to_problem(), status_code=error.status, media_type=PROBLEM_JSON, headers=headers
    )


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
        error = ProblemError(str(exc.detail))
        error.status = exc.status_code  # type: ignore[misc]
        return problem_response(error)


def create_app(runtime: Runtime) -> FastAPI:
    """The verifier's ASGI application."""
    app = FastAPI(
        title="envattest verifier",
        version=__version__,
        description="Consent-first environment attestation: protocol v1.",
    )
    app.state.runtime = runtime
    _install_error_handlers(app)

    @app.get("/v1/manifest", tags=["consent"])
    def get_manifest() -> Response:
        """The consent manifest; its ETag is the SHA-256 of these exact bytes."""
        manifest = runtime.manifest
        return Response(
            manifest.raw,
            media_type="application/json",
            headers={"ETag": f'"{manifest.sha256}"', "Cache-Control": "no-cache"},
        )

    @app.post("/v1/enroll", tags=["enrollment"], response_model=EnrollResponse)
    def enroll(body: EnrollRequest) -> EnrollResponse:
        """Enroll a device key with an enrollment token."""
        fmt = body.key_attestation.get("format")
        if fmt != "none":
            raise BadRequestError(
                f"key_attestation.format {fmt!r} is not supported by this verifier; use 'none'"
            )
        done = runtime.enrollment.enroll_without_proof(
            enrollment_token=body.enrollment_token,
            jwk=body.public_jwk,
            key_attestation=body.key_attestation,
        )
        return EnrollResponse(device_id=done.device_id, key_class=done.key_class.value)

    @app.post("/v1/challenge", tags=["attestation"], response_model=ChallengeResponse)
    def challenge(body: ChallengeRequest) -> ChallengeResponse:
        """A single-use nonce bound to the device."""
        issued = runtime.verifier.challenge(body.device_id)
        return ChallengeResponse(nonce=issued.nonce, expires_in=issued.expires_in)

    @app.post(
        "/v1/attest",
        tags=["attestation"],
        response_model=AttestResponse,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {EVIDENCE_MEDIA_TYPE: {"schema": {"type": "string"}}},
            }
        },
    )
    async def attest(request: Request) -> AttestResponse:
        """Verify evidence; on allow, return an access token."""
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != EVIDENCE_MEDIA_TYPE:
            raise UnsupportedMediaError(f"send the evidence as Content-Type {EVIDENCE_MEDIA_TYPE}")
        body = await request.body()
        outcome = await run_in_threadpool(runtime.verifier.attest, body)
        return AttestResponse(
            decision="allow",
            reasons=outcome.decision.reasons,
            access_token=outcome.token.token,
            token_type="Bearer",  # noqa: S106 (a token type, not a secret)
            expires_in=outcome.token.expires_in,
        )

    @app.get("/.well-known/jwks.json", tags=["keys"])
    def jwks() -> dict[str, Any]:
        """The verifier's token-signing public keys."""
        return runtime.issuer.ring.jwks()

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz() -> dict[str, str]:
        """Readiness: the database answers."""
        runtime.store.ping()
        return {"status": "ready"}

    app.add_middleware(BodyLimitMiddleware, max_bytes=runtime.config.max_body_bytes)
    return app
