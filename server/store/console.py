"""Console accounts, their sign-in identities, and sessions (tokens stored by hash only).

An account (``console_users``) is separate from how it signs in (``console_identities``:
provider ``password`` with the username as subject today; ``oidc:<issuer>`` with the ``sub``
claim for single sign-on), so adding a provider adds identities, not a new account table.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from server.errors import UnavailableError
from server.store.schema import console_identities, console_sessions, console_users

PASSWORD_PROVIDER = "password"  # noqa: S105 (a provider name)


class DuplicateUserError(Exception):
    """A console account with this username exists."""


@dataclass(frozen=True)
class ConsoleUserRecord:
    """A console account."""

    user_id: str
    username: str
    created_at: int
    disabled_at: int | None = None


@dataclass(frozen=True)
class ConsoleSessionRecord:
    """A signed-in session (the token itself is never stored)."""

    session_sha256: str
    user_id: str
    provider: str
    created_at: int
    expires_at: int


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A write transaction; a locked or unreachable database becomes UnavailableError."""
    try:
        with engine.begin() as conn:
            yield conn
    except (OperationalError, InterfaceError) as exc:
        raise UnavailableError(
            "the verifier's database is busy or unavailable; retry shortly",
            audit_detail=f"database error: {exc.__class__.__name__}",
            retry_after_s=2,
        ) from exc


@contextmanager
def read_tx(engine: Engine) -> Iterator[Connection]:
    """A read transaction that takes no write lock (SQLite: plain BEGIN)."""
    try:
        with engine.connect().execution_options(envattest_read_only=True) as conn:
            yield conn
    except (OperationalError, InterfaceError) as exc:
        raise UnavailableError(
            "the verifier's database is busy or unavailable; retry shortly",
            audit_detail=f"database error: {exc.__class__.__name__}",
            retry_after_s=2,
        ) from exc


def _user(row: Any) -> ConsoleUserRecord:
    return ConsoleUserRecord(row.user_id, row.username, row.created_at, row.disabled_at)


class ConsoleAccountStore:
    """Accounts, identities and sessions of the console."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_user(
        self, user: ConsoleUserRecord, *, provider: str, subject: str, secret_hash: str | None
    ) -> None:
        """Create an account with its first identity, in one transaction."""
        try:
            with write_tx(self.engine) as conn:
                conn.execute(
                    insert(console_users).values(
                        user_id=user.user_id, username=user.username, created_at=user.created_at
                    )
                )
                conn.execute(
                    insert(console_identities).values(
                        provider=provider, subject=subject, user_id=user.user_id,
                        secret_hash=secret_hash,
                    )
                )  # fmt: skip
        except IntegrityError as exc:
            raise DuplicateUserError(user.username) from exc

    def users(self) -> list[ConsoleUserRecord]:
        """Every account, by username."""
        with read_tx(self.engine) as conn:
            rows = conn.execute(select(console_users).order_by(console_users.c.username)).all()
        return [_user(r) for r in rows]

    def user(self, user_id: str) -> ConsoleUserRecord | None:
        """One account by id."""
        with read_tx(self.engine) as conn:
            row = conn.execute(
                select(console_users).where(console_users.c.user_id == user_id)
            ).first()
        return None if row is None else _user(row)

    def identity(self, provider: str, subject: str) -> tuple[ConsoleUserRecord, str | None] | None:
        """The account an identity signs in to, with the identity's secret hash."""
        i, u = console_identities.c, console_users.c
        query = (
            select(console_users, i.secret_hash)
            .join(console_identities, i.user_id == u.user_id)
            .where(i.provider == provider, i.subject == subject)
        )
        with read_tx(self.engine) as conn:
            row = conn.execute(query).first()
        return None if row is None else (_user(row), row.secret_hash)

    def set_secret(self, provider: str, subject: str, secret_hash: str) -> None:
        """Replace an identity's secret hash (argon2 parameter upgrades)."""
        i = console_identities.c
        with write_tx(self.engine) as conn:
            conn.execute(
                update(console_identities)
                .where(i.provider == provider, i.subject == subject)
                .values(secret_hash=secret_hash)
            )

    def disable_user(self, username: str, *, now: int) -> ConsoleUserRecord | None:
        """Disable an account and end its sessions; None if there is no such account."""
        u = console_users.c
        with write_tx(self.engine) as conn:
            row = conn.execute(select(console_users).where(u.username == username)).first()
            if row is None:
                return None
            if row.disabled_at is None:
                conn.execute(
                    update(console_users).where(u.user_id == row.user_id).values(disabled_at=now)
                )
            conn.execute(delete(console_sessions).where(console_sessions.c.user_id == row.user_id))
        return ConsoleUserRecord(row.user_id, row.username, row.created_at, row.disabled_at or now)

    def add_session(self, session: ConsoleSessionRecord) -> None:
        """Store a new session by its token's hash; drop expired ones on the way."""
        s = console_sessions.c
        with write_tx(self.engine) as conn:
            conn.execute(delete(console_sessions).where(s.expires_at <= session.created_at))
            conn.execute(
                insert(console_sessions).values(
                    session_sha256=session.session_sha256, user_id=session.user_id,
                    provider=session.provider, created_at=session.created_at,
                    expires_at=session.expires_at,
                )
            )  # fmt: skip

    def session(self, session_sha256: str) -> ConsoleSessionRecord | None:
        """A session by token hash, expired or not (the caller decides)."""
        s = console_sessions.c
        with read_tx(self.engine) as conn:
            row = conn.execute(
                select(console_sessions).where(s.session_sha256 == session_sha256)
            ).first()
        if row is None:
            return None
        return ConsoleSessionRecord(
            row.session_sha256, row.user_id, row.provider, row.created_at, row.expires_at
        )

    def end_session(self, session_sha256: str) -> None:
        """Sign out."""
        with write_tx(self.engine) as conn:
            conn.execute(
                delete(console_sessions).where(console_sessions.c.session_sha256 == session_sha256)
            )
