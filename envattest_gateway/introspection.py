"""Revocation through the verifier: RFC 7662 introspection, with a short cache.

Each token's answer is kept for ``ttl_s`` seconds (5 by default), so a revocation reaches
the gateway within that time while a busy tool does not cost one verifier call per request.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import httpx

from envattest_gateway.errors import InactiveTokenError, VerifierUnavailableError

MAX_ENTRIES = 10_000
INACTIVE = (
    "the verifier no longer accepts this token (device revoked or erased, or token replaced): "
    "run 'envattest status'; if the device was revoked, ask your administrator for a new "
    "enrollment token and run 'envattest init' again"
)


class IntrospectionClient:
    """``POST /v1/introspect`` with a gateway credential; answers cached briefly."""

    def __init__(
        self,
        url: str,
        credential: str,
        *,
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.monotonic,
        ttl_s: float = 5.0,
    ) -> None:
        self.url = url
        self._credential = credential
        self._http = http
        self._clock = clock
        self._ttl_s = ttl_s
        self._answers: dict[str, tuple[float, dict[str, Any]]] = {}

    async def active(self, token: str) -> dict[str, Any]:
        """The introspection answer for an active token; raise InactiveTokenError otherwise."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        cached = self._answers.get(digest)
        if cached is not None and now - cached[0] < self._ttl_s:
            answer = cached[1]
        else:
            answer = await self._ask(token)
            self._remember(digest, now, answer)
        if answer.get("active") is not True:
            raise InactiveTokenError(INACTIVE, detail="introspection: active false")
        return answer

    async def _ask(self, token: str) -> dict[str, Any]:
        try:
            reply = await self._http.post(
                self.url,
                data={"token": token},
                headers={"Authorization": f"Bearer {self._credential}"},
                timeout=5,
            )
        except httpx.HTTPError as exc:
            raise VerifierUnavailableError(f"cannot reach {self.url}: {exc}") from exc
        if reply.status_code == 401:
            raise VerifierUnavailableError(
                "the verifier refused this gateway's credential: create one with "
                "'envattest-server gateway-credential create' and set ENVATTEST_GATEWAY_CREDENTIAL"
            )
        if reply.status_code != 200:
            raise VerifierUnavailableError(f"{self.url} answered {reply.status_code}")
        answer: Any = reply.json()
        if not isinstance(answer, dict):
            raise VerifierUnavailableError(f"{self.url} answered something that is not an object")
        return answer

    def _remember(self, digest: str, now: float, answer: dict[str, Any]) -> None:
        if len(self._answers) >= MAX_ENTRIES:
            self._answers = {
                d: kept for d, kept in self._answers.items() if now - kept[0] < self._ttl_s
            }
            if len(self._answers) >= MAX_ENTRIES:
                self._answers.clear()
        self._answers[digest] = (now, answer)


__all__ = ["INACTIVE", "IntrospectionClient"]
