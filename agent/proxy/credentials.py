"""The device's credential on every forwarded request: a current token and, for a DPoP-bound
token, a fresh proof signed by the enrolled key (RFC 9449 section 7.1).

``TokenSource`` attests ahead of expiry in the background, so requests rarely wait for an
attestation; ``RequestCredentials`` turns the current token into headers for one request.
Proof creation sits behind ``ProofFactory`` (``attest.dpop.create_proof`` bound to the device
key), so a TPM-held key signs without the proxy ever seeing key material.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from agent.errors import AgentError

Headers = list[tuple[bytes, bytes]]
Clock = Callable[[], float]

REFRESH_FRACTION = 0.75
"""Attest again once this share of a token's lifetime has passed."""
EXPIRY_SAFETY_S = 5.0
"""A token this close to expiry is not sent: the gateway's clock may be ahead."""
RETRY_AFTER_FAILURE_S = 10.0


class ProofSigningError(AgentError):
    """A DPoP-bound token arrived but no device key can sign proofs for it."""


@dataclass(frozen=True)
class IssuedToken:
    """An access token as the verifier issued it, with when it was received."""

    access_token: str
    token_type: str
    issued_at: float
    expires_at: float

    @property
    def dpop_bound(self) -> bool:
        """The token must travel with a DPoP proof (``token_type: DPoP``)."""
        return self.token_type.lower() == "dpop"


ObtainToken = Callable[[], IssuedToken]
"""Blocking: attest and return the new token (raises AgentError when refused)."""
ProofFactory = Callable[[str, str, str, str | None], str]
"""``(htm, htu, access_token, nonce) -> proof``; blocking (it may wait for a TPM)."""


class TokenSource:
    """The current token; one refresh at a time, started ahead of expiry."""

    def __init__(
        self,
        obtain: ObtainToken,
        *,
        clock: Clock = time.time,
        refresh_fraction: float = REFRESH_FRACTION,
        report: Callable[[str], None] = lambda _line: None,
    ) -> None:
        self._obtain = obtain
        self._clock = clock
        self._fraction = refresh_fraction
        self._report = report
        self._token: IssuedToken | None = None
        self._failure: AgentError | None = None
        self._failed_until = 0.0
        self._lock = asyncio.Lock()

    def refresh_due_at(self, token: IssuedToken) -> float:
        """When the background task attests again for ``token``."""
        return token.issued_at + (token.expires_at - token.issued_at) * self._fraction

    def _usable(self, token: IssuedToken | None) -> bool:
        return token is not None and self._clock() < token.expires_at - EXPIRY_SAFETY_S

    async def current(self) -> IssuedToken:
        """A token with time left, attesting first when there is none."""
        token = self._token
        if token is not None and self._usable(token):
            return token
        return await self.refresh(stale=token)

    async def refresh(self, *, stale: IssuedToken | None = None) -> IssuedToken:
        """Attest once for everyone waiting; ``stale`` is the token the caller gave up on.

        A refusal is remembered for ``RETRY_AFTER_FAILURE_S``: a tool that retries at once
        gets the same answer without another attestation.
        """
        async with self._lock:
            current = self._token
            if current is not None and current is not stale and self._usable(current):
                return current  # another caller refreshed while this one waited
            if self._failure is not None and self._clock() < self._failed_until:
                raise self._failure
            try:
                fresh = await asyncio.to_thread(self._obtain)
            except AgentError as exc:
                self._failure, self._failed_until = exc, self._clock() + RETRY_AFTER_FAILURE_S
                raise
            self._token, self._failure = fresh, None
            return fresh

    def invalidate(self, token: IssuedToken) -> None:
        """The gateway refused ``token`` (revoked, expired early): attest again when next
        needed instead of sending it again."""
        if self._token is token:
            self._token = None

    async def keep_fresh(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Run until cancelled: attest again before each token expires."""
        while True:
            token = self._token or await self.current()
            await sleep(max(0.0, self.refresh_due_at(token) - self._clock()))
            try:
                await self.refresh(stale=token)
            except AgentError as exc:
                self._report(f"envattest proxy: token refresh failed: {exc}")
                await sleep(RETRY_AFTER_FAILURE_S)


class RequestCredentials:
    """Headers that carry the device's credential for one upstream request."""

    def __init__(
        self,
        tokens: TokenSource,
        proof: ProofFactory | None,
        *,
        signing_executor: Executor | None = None,
    ) -> None:
        self.tokens = tokens
        self._proof = proof
        self._executor = signing_executor
        self.nonce: str | None = None
        """The gateway's latest ``DPoP-Nonce`` (RFC 9449 section 8), sent in later proofs."""

    async def headers(self, method: str, url: str, token: IssuedToken) -> Headers:
        """``Authorization`` (and ``DPoP``) for ``method url`` with ``token``."""
        if not token.dpop_bound:
            return [(b"authorization", b"Bearer " + token.access_token.encode("ascii"))]
        if self._proof is None:
            raise ProofSigningError(
                "the verifier issued a DPoP-bound token but no device key is available to "
                "sign proofs; run 'envattest status' and 'envattest doctor'"
            )
        args = (method, url, token.access_token, self.nonce)
        if self._executor is None:
            proof = self._proof(*args)
        else:  # hardware keys block for milliseconds: keep the event loop free
            proof = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._proof, *args
            )
        return [
            (b"authorization", b"DPoP " + token.access_token.encode("ascii")),
            (b"dpop", proof.encode("ascii")),
        ]
