"""Console accounts on a real SQLite database: Argon2id hashes, refusals, sessions that end."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, text

from server.console.accounts import (
    PasswordAuthenticator,
    SessionService,
    create_password_user,
    session_sha256,
)
from server.console.errors import SessionError, SignInError
from server.errors import ServerError
from server.store.console import ConsoleAccountStore
from server.store.migrate import upgrade
from server.store.sql import make_engine

PASSWORD = "a long enough password"
FAST = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


@pytest.fixture
def store(tmp_path: Path) -> ConsoleAccountStore:
    engine: Engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    return ConsoleAccountStore(engine)


def test_passwords_are_stored_as_argon2id_hashes(store: ConsoleAccountStore) -> None:
    create_password_user(store, "alice", PASSWORD, now=1)
    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT secret_hash FROM console_identities")).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_a_weak_parameter_hash_is_upgraded_at_sign_in(store: ConsoleAccountStore) -> None:
    create_password_user(store, "alice", PASSWORD, now=1, hasher=FAST)
    PasswordAuthenticator(store).authenticate("alice", PASSWORD)
    found = store.identity("password", "alice")
    assert found is not None
    assert found[1] is not None
    assert not PasswordHasher().check_needs_rehash(found[1])


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("alice", "short", "at least 12"),
        ("al ice", PASSWORD, "without spaces"),
        ("", PASSWORD, "1-128"),
    ],
)
def test_bad_accounts_are_refused_with_what_to_do(
    store: ConsoleAccountStore, username: str, password: str, message: str
) -> None:
    with pytest.raises(ServerError, match=message):
        create_password_user(store, username, password, now=1)


def test_a_second_account_with_the_same_name_is_refused(store: ConsoleAccountStore) -> None:
    create_password_user(store, "alice", PASSWORD, now=1, hasher=FAST)
    with pytest.raises(ServerError, match="exists"):
        create_password_user(store, "alice", PASSWORD, now=2, hasher=FAST)


def test_wrong_unknown_and_disabled_all_fail_alike(store: ConsoleAccountStore) -> None:
    create_password_user(store, "alice", PASSWORD, now=1, hasher=FAST)
    auth = PasswordAuthenticator(store, FAST)
    reasons = []
    for user, password in (("alice", "wrong password!"), ("bob", PASSWORD)):
        with pytest.raises(SignInError, match="wrong username or password") as caught:
            auth.authenticate(user, password)
        reasons.append(caught.value.reason)
    store.disable_user("alice", now=5)
    with pytest.raises(SignInError, match="wrong username or password") as caught:
        auth.authenticate("alice", PASSWORD)
    reasons.append(caught.value.reason)
    assert reasons == [
        "wrong password for 'alice'",
        "unknown user 'bob'",
        "account 'alice' is disabled",
    ]


def test_sessions_expire_end_on_disable_and_are_stored_by_hash(store: ConsoleAccountStore) -> None:
    user = create_password_user(store, "alice", PASSWORD, now=1, hasher=FAST)
    now = [1000.0]
    sessions = SessionService(store, ttl_s=60, clock=lambda: now[0])
    token = sessions.open(user, "password")
    assert sessions.check(token).user.username == "alice"
    assert store.session(token) is None  # the token itself is not stored
    assert store.session(session_sha256(token)) is not None
    now[0] += 61
    with pytest.raises(SessionError, match="expired"):
        sessions.check(token)
    now[0] = 1000.0
    again = sessions.open(user, "password")
    store.disable_user("alice", now=1001)
    with pytest.raises(SessionError):
        sessions.check(again)
    with pytest.raises(SessionError, match="sign in"):
        sessions.check(None)
