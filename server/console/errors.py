"""Console errors.

ConsoleError (ServerError)
├── SignInError          wrong username or password, disabled account (one message for all)
├── SignInThrottledError too many attempts: wait
└── SessionError         no, unknown or expired session: sign in again
"""

from __future__ import annotations

from server.errors import ServerError


class ConsoleError(ServerError):
    """Base of console errors."""


class SignInError(ConsoleError):
    """The credentials do not open an enabled account (the reason goes to the audit log)."""

    def __init__(self, reason: str) -> None:
        super().__init__("wrong username or password")
        self.reason = reason


class SignInThrottledError(ConsoleError):
    """Too many sign-in attempts from this address or for this account."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many sign-in attempts; wait {retry_after_s} s and try again")
        self.retry_after_s = retry_after_s


class SessionError(ConsoleError):
    """No valid session."""
