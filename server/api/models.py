"""Request and response bodies of protocol v1 (they define the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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


class IntrospectionResponse(BaseModel):
    """RFC 7662 answer; an inactive token gets only ``{"active": false}``."""

    active: bool
    token_type: str | None = None
    sub: str | None = None
    exp: int | None = None
    iat: int | None = None
    nbf: int | None = None
    aud: str | list[str] | None = None
    iss: str | None = None
    jti: str | None = None
    cnf: dict[str, str] | None = None
    key_class: str | None = None
    policy_version: str | None = None
    assurance: dict[str, str] | None = None


class Problem(BaseModel):
    """An RFC 9457 problem document (extra members such as ``reasons`` may follow)."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
