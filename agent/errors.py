"""Errors the agent shows to a person: each says what went wrong and what to do next.

AgentError
├── NotEnrolledError       no enrollment in this home: run envattest init
├── ServerUnreachableError the verifier cannot be reached (network, TLS, proxy)
├── ProtocolError          the verifier answered something the agent cannot use
├── EnrollmentError        the verifier refused enrollment
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


class ConsentRequiredError(AgentError):
    """Consent is missing, revoked or stale."""


class AccessDeniedError(AgentError):
    """Policy denied access."""

    def __init__(self, message: str, reasons: list[str]) -> None:
        super().__init__(message)
        self.reasons = reasons


class StateError(AgentError):
    """Local state could not be read or written."""
