"""Protocol v1: manifest, enroll, challenge, attest, JWKS."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from server.api.attestation import (
    EVIDENCE_MEDIA_TYPE,
    answer_attest,
    answer_challenge,
    as_response,
)
from server.api.bodies import StrictJsonRoute
from server.api.models import (
    AttestResponse,
    ChallengeRequest,
    ChallengeResponse,
    EnrollRequest,
    EnrollResponse,
)
from server.enrollment import PendingTpm2
from server.errors import UnsupportedMediaError
from server.runtime import Runtime


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

    @api.post("/v1/enroll/challenge", tags=["enrollment"], response_model=ChallengeResponse)
    def enroll_challenge(body: EnrollChallengeRequest) -> ChallengeResponse:
        """A nonce bound to a valid enrollment token: the key being enrolled signs it (format
        ``none``), or TPM2_Certify carries it as qualifying data (format ``tpm2``)."""
        issued = runtime.enrollment.challenge(body.enrollment_token)
        return ChallengeResponse(nonce=issued.nonce, expires_in=issued.expires_in)

    @api.post(
        "/v1/enroll",
        tags=["enrollment"],
        response_model=EnrollResponse | Tpm2EnrollResponse,
    )
    def enroll(body: EnrollRequest) -> EnrollResponse | Tpm2EnrollResponse:
        """Enroll a device key: ``none`` completes here, ``tpm2`` answers a challenge."""
        done = runtime.enrollment.enroll(
            enrollment_token=body.enrollment_token,
            jwk=body.public_jwk,
            statement=body.key_attestation,
            nonce=body.nonce,
        )
        if isinstance(done, PendingTpm2):
            return Tpm2EnrollResponse(
                enrollment_id=done.enrollment_id,
                credential_blob=done.credential_blob,
                encrypted_secret=done.encrypted_secret,
                expires_in=done.expires_in,
            )
        return EnrollResponse(device_id=done.device_id, key_class=done.key_class.value)

    @api.post("/v1/enroll/activate", tags=["enrollment"], response_model=EnrollResponse)
    def activate(body: ActivateRequest) -> EnrollResponse:
        """Answer the credential-activation challenge; the device is enrolled as ``tpm2``."""
        done = runtime.enrollment.activate_tpm2(
            enrollment_id=body.enrollment_id, secret=body.secret
        )
        return EnrollResponse(device_id=done.device_id, key_class=done.key_class.value)

    # The edge layer answers these two itself (``server.api.attestation``); the declarations
    # document them and, if ever reached, run the same functions.
    @api.post("/v1/challenge", tags=["attestation"], response_model=ChallengeResponse)
    async def challenge(body: ChallengeRequest) -> Response:
        """A single-use nonce bound to the device."""
        return as_response(await answer_challenge(runtime.verifier, body))

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
    async def attest(request: Request) -> Response:
        """Verify evidence; on allow, return an access token."""
        body = await request.body()
        return as_response(await answer_attest(runtime.verifier, request.scope, body))

    @api.get("/.well-known/jwks.json", tags=["keys"])
    def jwks() -> dict[str, Any]:
        """The verifier's token-signing public keys."""
        return runtime.issuer.ring.jwks()

    return api
