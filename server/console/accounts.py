"""Console accounts: password hashing (Argon2id), sign-in, and sessions.

Sign-in is one ``Authenticator`` per provider: ``PasswordAuthenticator`` checks an Argon2id
hash; an OIDC authenticator would map a verified ID token's ``(iss, sub)`` to the identity
``("oidc:<iss>", sub)`` and hand back the same ``ConsoleUserRecord``. Sessions do not care how
the user signed in.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from server.console.errors import SessionError, SignInError
from server.errors import ServerError
from server.store.console import (
    PASSWORD_PROVIDER,
    ConsoleAccountStore,
    ConsoleSessionRecord,
    ConsoleUserRecord,
    DuplicateUserError,
)

MIN_PASSWORD_LENGTH = 12
SESSION_TOKEN_BYTES = 32
# a hash to verify against when the username is unknown, so both paths cost the same
_DUMMY_PASSWORD = "not-a-real-password"  # noqa: S105


def session_sha256(token: str) -> str:
    """What the database holds for a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


class Authenticator(Protocol):
    """One sign-in provider: credentials in, the account they open out (or SignInError)."""

    provider: str

    def authenticate(self, subject: str, secret: str) -> ConsoleUserRecord:
        """The enabled account, or raise SignInError."""
        ...


class PasswordAuthenticator:
    """Username and password, checked against an Argon2id hash."""

    provider = PASSWORD_PROVIDER

    def __init__(self, store: ConsoleAccountStore, hasher: PasswordHasher | None = None) -> None:
        self.store = store
        self.hasher = hasher or PasswordHasher()
        self._dummy = self.hasher.hash(_DUMMY_PASSWORD)

    def authenticate(self, subject: str, secret: str) -> ConsoleUserRecord:
        """Verify the password in constant work whether or not the user exists."""
        found = self.store.identity(self.provider, subject)
        stored = found[1] if found is not None and found[1] else self._dummy
        try:
            matched: bool = self.hasher.verify(stored, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            matched = False
        if found is None:
            raise SignInError(f"unknown user {subject!r}")
        if not matched:
            raise SignInError(f"wrong password for {subject!r}")
        user = found[0]
        if user.disabled_at is not None:
            raise SignInError(f"account {subject!r} is disabled")
        if self.hasher.check_needs_rehash(stored):
            self.store.set_secret(self.provider, subject, self.hasher.hash(secret))
        return user


def create_password_user(
    store: ConsoleAccountStore,
    username: str,
    password: str,
    *,
    now: int,
    hasher: PasswordHasher | None = None,
) -> ConsoleUserRecord:
    """A new account that signs in with ``password``."""
    if not username or len(username) > 128 or not username.isprintable() or " " in username:
        raise ServerError("the username must be 1-128 printable characters without spaces")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ServerError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    user = ConsoleUserRecord(secrets.token_hex(16), username, now)
    secret_hash = (hasher or PasswordHasher()).hash(password)
    try:
        store.add_user(user, provider=PASSWORD_PROVIDER, subject=username, secret_hash=secret_hash)
    except DuplicateUserError:
        raise ServerError(
            f"a console user {username!r} exists; pick another name or disable it first"
        ) from None
    return user


@dataclass(frozen=True)
class SignedIn:
    """A valid session and its account."""

    user: ConsoleUserRecord
    session: ConsoleSessionRecord


class SessionService:
    """Opens, checks and ends sessions; tokens are random and stored by hash."""

    def __init__(
        self,
        store: ConsoleAccountStore,
        *,
        ttl_s: int,
        clock: Callable[[], float] = time.time,
        token_bytes: Callable[[int], str] = secrets.token_urlsafe,
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._clock = clock
        self._token = token_bytes

    def open(self, user: ConsoleUserRecord, provider: str) -> str:
        """A new session token for ``user``."""
        now = int(self._clock())
        token = self._token(SESSION_TOKEN_BYTES)
        self.store.add_session(
            ConsoleSessionRecord(
                session_sha256(token), user.user_id, provider, now, now + self.ttl_s
            )
        )
        return token

    def check(self, token: str | None) -> SignedIn:
        """The session named by ``token``, or SessionError (missing, unknown, expired, disabled)."""
        if not token or len(token) > 128:
            raise SessionError("sign in to use the console")
        session = self.store.session(session_sha256(token))
        if session is None:
            raise SessionError("your session ended; sign in again")
        if session.expires_at <= int(self._clock()):
            self.store.end_session(session.session_sha256)
            raise SessionError("your session expired; sign in again")
        user = self.store.user(session.user_id)
        if user is None or user.disabled_at is not None:
            raise SessionError("this account is disabled")
        return SignedIn(user, session)

    def close(self, token: str | None) -> None:
        """Sign out (no error if there was no session)."""
        if token:
            self.store.end_session(session_sha256(token))
