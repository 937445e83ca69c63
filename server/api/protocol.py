"""Protocol v1: manifest, enroll, challenge, attest, JWKS."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from attest.errors import AttestError
from attest.keyattest import TrustStore, load_trust_store
from server.api.bodies import StrictJsonRoute
from server.api.models import (
    AttestResponse,
    ChallengeRequest,
    ChallengeResponse,
    EnrollRequest,
    EnrollResponse,
)
from server.errors import BadRequestError, ConfigError, UnsupportedMediaError
from server.runtime import Runtime
from server.tokens import token_type

EVIDENCE_MEDIA_TYPE = "application/eat+jwt"


class EnrollChallengeRequest(BaseModel):
    """Body of POST /v1/enroll/challenge."""

    model_config = ConfigDict(extra="forbid")
    enrollment_token: str = Field(min_length=1, max_length=256)


class Tpm2EnrollResponse(BaseModel):
    """A TPM enrollment waiting for credential activation."""

    enrollment_id: str
    credential_blob: str
    encrypted_secret: str
    expires_in: int


class ActivateRequest(BaseModel):
    """Body of POST /v1/enroll/activate."""

    model_config = ConfigDict(extra="forbid")
    enrollment_id: str = Field(min_length=1, max_length=64)
    secret: str = Field(min_length=1, max_length=256)


def load_tpm_trust_store(runtime: Runtime) -> TrustStore | None:
    """The EK trust store named by ``tpm_roots`` (``--tpm-roots``), or None if not configured."""
    directory = runtime.config.tpm_roots_dir
    if directory is None:
        return None
    try:
        return load_trust_store(directory)
    except AttestError as exc:
        raise ConfigError(f"--tpm-roots {directory}: {exc}") from exc


def require_media_type(request: Request, expected: str) -> None:
    """415 unless the body is declared as ``expected``."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != expected:
        raise UnsupportedMediaError(f"send the body as Content-Type {expected}")


def router(runtime: Runtime) -> APIRouter:
    """The protocol routes."""
    api = APIRouter(route_class=StrictJsonRoute)

    @api.get("/v1/manifest", tags=["consent"])
    def get_manifest() -> Response:
        """The consent manifest; its ETag is the SHA-256 of these exact bytes."""
        manifest = runtime.manifest
        return Response(
            manifest.raw,
            media_type="application/json",
            headers={"ETag": f'"{manifest.sha256}"', "Cache-Control": "no-cache"},
        )

    trust_store = load_tpm_trust_store(runtime)
    ttl_s = runtime.config.enrollment_ttl_s

    @api.post("/v1/enroll/challenge", tags=["enrollment"], response_model=ChallengeResponse)
    def enroll_challenge(body: EnrollChallengeRequest) -> ChallengeResponse:
        """A nonce for TPM2_Certify's qualifying data, bound to the enrollment token."""
        nonce = runtime.enrollment.enrollment_nonce(body.enrollment_token, ttl_s=ttl_s)
        return ChallengeResponse(nonce=nonce, expires_in=ttl_s)

    @api.post(
        "/v1/enroll",
        tags=["enrollment"],
        response_model=EnrollResponse | Tpm2EnrollResponse,
    )
    def enroll(body: EnrollRequest) -> EnrollResponse | Tpm2EnrollResponse:
        """Enroll a device key: ``none`` completes here, ``tpm2`` answers a challenge."""
        fmt = body.key_attestation.get("format")
        if fmt == "tpm2":
            pending = runtime.enrollment.begin_tpm2(
                enrollment_token=body.enrollment_token,
                jwk=body.public_jwk,
                statement=body.key_attestation,
                nonce=body.nonce,
                trust_store=trust_store,
                ttl_s=ttl_s,
            )
            return Tpm2EnrollResponse(
                enrollment_id=pending.enrollment_id,
                credential_blob=pending.credential_blob,
                encrypted_secret=pending.encrypted_secret,
                expires_in=pending.expires_in,
            )
        if fmt != "none":
            raise BadRequestError(
                f"key_attestation.format {fmt!r} is not supported; use 'none' or 'tpm2'"
            )
        done = runtime.enrollment.enroll_without_proof(
            enrollment_token=body.enrollment_token,
            jwk=body.public_jwk,
            key_attestation=body.key_attestation,
        )
        return EnrollResponse(device_id=done.device_id, key_class=done.key_class.value)

    @api.post("/v1/enroll/activate", tags=["enrollment"], response_model=EnrollResponse)
    def activate(body: ActivateRequest) -> EnrollResponse:
        """Answer the credential-activation challenge; the device is enrolled as ``tpm2``."""
        done = runtime.enrollment.activate_tpm2(
            enrollment_id=body.enrollment_id, secret=body.secret
        )
        return EnrollResponse(device_id=done.device_id, key_class=done.key_class.value)

    @api.post("/v1/challenge", tags=["attestation"], response_model=ChallengeResponse)
    def challenge(body: ChallengeRequest) -> ChallengeResponse:
        """A single-use nonce bound to the device."""
        issued = runtime.verifier.challenge(body.device_id)
        return ChallengeResponse(nonce=issued.nonce, expires_in=issued.expires_in)

    @api.post(
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
        require_media_type(request, EVIDENCE_MEDIA_TYPE)
        body = await request.body()
        outcome = await run_in_threadpool(runtime.verifier.attest, body)
        return AttestResponse(
            decision="allow",
            reasons=outcome.decision.reasons,
            access_token=outcome.token.token,
            token_type=token_type(outcome.token.claims),
            expires_in=outcome.token.expires_in,
        )

    @api.get("/.well-known/jwks.json", tags=["keys"])
    def jwks() -> dict[str, Any]:
        """The verifier's token-signing public keys."""
        return runtime.issuer.ring.jwks()

    return api
