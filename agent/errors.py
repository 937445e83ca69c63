"""Errors the agent shows to a person: each says what went wrong and what to do next.

AgentError
├── NotEnrolledError       no enrollment in this home: run envattest init
├── ServerUnreachableError the verifier cannot be reached (network, TLS, proxy)
├── ProtocolError          the verifier answered something the agent cannot use
├── EnrollmentError        the verifier refused enrollment
├── DeviceInactiveError    the verifier no longer accepts this device (revoked or erased)
├── ConsentRequiredError   consent missing, revoked or stale
├── AccessDeniedError      the verifier's policy denied access (carries the reasons)
└── StateError             local state is unreadable or cannot be written
"""

from __future__ import annotations


class AgentError(Exception):
    """Base class; ``str(error)`` is the one line shown to the user."""


class NotEnrolledError(AgentError):
    """This home has no enrollment."""


class ServerUnreachableError(AgentError):
    """The verifier could not be reached."""


class ProtocolError(AgentError):
    """The verifier's answer was unusable."""


class EnrollmentError(AgentError):
    """Enrollment was refused."""


RECOVER_ENROLLMENT = (
    "to enroll again, get a new enrollment token from your administrator, then run "
    "'envattest forget --local' and 'envattest init --server URL --enroll-token TOKEN'"
)


class DeviceInactiveError(AgentError):
    """The verifier revoked or erased this device; the message says how to enroll again."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(
            detail
            or "the verifier no longer accepts this device (revoked by an administrator, or "
            "erased with 'envattest forget'); "
            + RECOVER_ENROLLMENT
        )


class ConsentRequiredError(AgentError):
    """Consent is missing, revoked or stale."""


class AccessDeniedError(AgentError):
    """Policy denied access."""

    def __init__(self, message: str, reasons: list[str]) -> None:
        super().__init__(message)
        self.reasons = reasons


class StateError(AgentError):
    """Local state could not be read or written."""
