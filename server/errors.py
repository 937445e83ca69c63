"""Errors of the verifier and how they reach the network (RFC 9457 problem details).

ServerError
├── ProblemError            answered to the client as application/problem+json
│   ├── BadRequestError         400 malformed or wrongly typed body
│   ├── RequestTimeoutError     408 body not complete within the deadline
│   ├── PayloadTooLargeError    413 body over the limit
│   ├── UnsupportedMediaError   415 wrong Content-Type
│   ├── EnrollmentRejectedError 401 bad, used or expired enrollment token or key proof
│   ├── AttestationRejectedError 401 evidence failed verification (uniform; detail in audit)
│   ├── ConsentRequiredError    409 consent is stale or does not cover what was sent
│   ├── AccessDeniedError       403 policy denied; carries the reasons
│   ├── UnauthorizedError       401 missing or bad credential (introspection, whoami)
│   ├── NotFoundError           404
│   ├── RateLimitedError        429 with Retry-After
│   └── UnavailableError        503 with Retry-After (database down or locked)
└── ConfigError             the data directory or configuration is unusable (CLI only)
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServerError(Exception):
    """Base class of every error this package raises."""


class ConfigError(ServerError):
    """The data directory or configuration is unusable; the message says how to fix it."""


class ProblemError(ServerError):
    """An error answered to the network as a problem document."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "invalid-request"
    title: ClassVar[str] = "Invalid request"

    def __init__(
        self,
        detail: str,
        *,
        audit_detail: str = "",
        extra: dict[str, Any] | None = None,
        retry_after_s: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.audit_detail = audit_detail or detail
        self.extra = extra or {}
        self.retry_after_s = retry_after_s
        self.headers = headers or {}

    def response_headers(self) -> dict[str, str]:
        """Headers the answer carries (Retry-After, WWW-Authenticate)."""
        headers = dict(self.headers)
        if self.retry_after_s:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers

    def to_problem(self) -> dict[str, Any]:
        """The RFC 9457 document."""
        return {
            "type": f"urn:envattest:problem:{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }


class BadRequestError(ProblemError):
    """The body is malformed or wrongly typed."""


class RequestTimeoutError(ProblemError):
    """The body did not arrive within the deadline (slow or stalled client)."""

    status = 408
    slug = "request-timeout"
    title = "Request timeout"


class PayloadTooLargeError(ProblemError):
    """The body is larger than the server accepts."""

    status = 413
    slug = "payload-too-large"
    title = "Payload too large"


class UnsupportedMediaError(ProblemError):
    """The Content-Type is not the one the endpoint takes."""

    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class EnrollmentRejectedError(ProblemError):
    """Enrollment refused: token or key proof."""

    status = 401
    slug = "enrollment-rejected"
    title = "Enrollment rejected"


class AttestationRejectedError(ProblemError):
    """Evidence refused; the network sees one uniform answer, the audit log the cause."""

    status = 401
    slug = "attestation-rejected"
    title = "Attestation rejected"


class ConsentRequiredError(ProblemError):
    """Consent is missing, stale or does not cover a field that was sent."""

    status = 409
    slug = "consent-required"
    title = "Consent required"


class AccessDeniedError(ProblemError):
    """The policy denied access."""

    status = 403
    slug = "access-denied"
    title = "Access denied by policy"


class UnauthorizedError(ProblemError):
    """A credential is missing or invalid."""

    status = 401
    slug = "unauthorized"
    title = "Unauthorized"


class NotFoundError(ProblemError):
    """No such resource."""

    status = 404
    slug = "not-found"
    title = "Not found"


class RateLimitedError(ProblemError):
    """Too many requests."""

    status = 429
    slug = "rate-limited"
    title = "Too many requests"


class UnavailableError(ProblemError):
    """The verifier cannot serve right now (database unavailable or locked)."""

    status = 503
    slug = "unavailable"
    title = "Service unavailable"


class InternalServerError(ProblemError):
    """A fault of the verifier's own (logged with its traceback; the client sees only this)."""

    status = 500
    slug = "internal-error"
    title = "Internal server error"
