"""Token refresh in the proxy: ahead of expiry, once for all waiters, never an expiring token."""

from __future__ import annotations

import asyncio

import pytest

from agent.errors import ServerUnreachableError
from agent.proxy.credentials import (
    EXPIRY_SAFETY_S,
    RETRY_AFTER_FAILURE_S,
    IssuedToken,
    ProofSigningError,
    RequestCredentials,
    TokenSource,
)

LIFETIME = 900.0


class FakeVerifier:
    """Issues numbered tokens of LIFETIME seconds at the fake clock's time."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.issued: list[IssuedToken] = []
        self.failing = False

    def clock(self) -> float:
        return self.now

    def obtain(self) -> IssuedToken:
        if self.failing:
            raise ServerUnreachableError("verifier down")
        token = IssuedToken(f"t{len(self.issued)}", "DPoP", self.now, self.now + LIFETIME)
        self.issued.append(token)
        return token


def test_the_current_token_is_reused_until_it_nearly_expires() -> None:
    verifier = FakeVerifier()
    tokens = TokenSource(verifier.obtain, clock=verifier.clock)

    async def scenario() -> list[str]:
        seen = [(await tokens.current()).access_token]
        verifier.now += LIFETIME - EXPIRY_SAFETY_S - 1
        seen.append((await tokens.current()).access_token)
        verifier.now += 1  # within the safety margin: never send it
        seen.append((await tokens.current()).access_token)
        return seen

    assert asyncio.run(scenario()) == ["t0", "t0", "t1"]


def test_concurrent_requests_share_one_attestation() -> None:
    verifier = FakeVerifier()
    tokens = TokenSource(verifier.obtain, clock=verifier.clock)

    async def scenario() -> set[str]:
        got = await asyncio.gather(*(tokens.current() for _ in range(10)))
        return {t.access_token for t in got}

    assert asyncio.run(scenario()) == {"t0"}
    assert len(verifier.issued) == 1


def test_the_background_refresh_attests_before_expiry_and_retries_after_a_failure() -> None:
    verifier = FakeVerifier()
    lines: list[str] = []
    tokens = TokenSource(verifier.obtain, clock=verifier.clock, report=lines.append)
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        verifier.now += seconds
        if len(sleeps) == 2:
            verifier.failing = True  # the refresh after this sleep fails
        if len(sleeps) == 3:
            verifier.failing = False
        if len(sleeps) == 5:
            raise asyncio.CancelledError

    async def scenario() -> None:
        with pytest.raises(asyncio.CancelledError):
            await tokens.keep_fresh(sleep=fake_sleep)

    asyncio.run(scenario())
    first, second, third = verifier.issued
    # refreshed at 3/4 of the lifetime, while the old token still had a quarter left
    assert sleeps[0] == pytest.approx(0.75 * LIFETIME)
    assert second.issued_at == pytest.approx(first.issued_at + 0.75 * LIFETIME)
    assert second.issued_at < first.expires_at - EXPIRY_SAFETY_S
    assert sleeps[2] == RETRY_AFTER_FAILURE_S
    assert lines == ["envattest proxy: token refresh failed: verifier down"]
    assert third.issued_at < second.expires_at


def test_a_dpop_token_without_a_signing_key_is_an_error_that_says_what_to_do() -> None:
    verifier = FakeVerifier()
    credentials = RequestCredentials(TokenSource(verifier.obtain, clock=verifier.clock), None)
    token = verifier.obtain()
    with pytest.raises(ProofSigningError, match="envattest doctor"):
        asyncio.run(credentials.headers("GET", "https://gw.example/", token))
