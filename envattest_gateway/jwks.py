"""The verifier's token-signing keys (``/.well-known/jwks.json``), cached.

Keys are fetched once and kept; a token whose ``kid`` is not in the cache triggers one refetch
(the verifier publishes a new key at ``keys rotate``), at most once per ``min_refresh_s`` so a
stream of forged ``kid`` values cannot turn into a stream of fetches.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from envattest_gateway.errors import VerifierUnavailableError

PublicKeys = Mapping[str, ec.EllipticCurvePublicKey]


def parse_jwks(raw: bytes) -> dict[str, ec.EllipticCurvePublicKey]:
    """P-256 public keys by ``kid``; anything else in the set is ignored."""
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise VerifierUnavailableError(f"the JWKS is not JSON: {exc}") from exc
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    for jwk in document.get("keys", []) if isinstance(document, dict) else []:
        if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
            continue
        if not isinstance(jwk.get("kid"), str):
            continue
        key: Any = ECAlgorithm.from_jwk(jwk)
        if isinstance(key, ec.EllipticCurvePublicKey):
            keys[jwk["kid"]] = key
    return keys


class JwksCache:
    """Keys by ``kid`` from one JWKS URL, refreshed on an unknown ``kid``."""

    def __init__(
        self,
        url: str,
        *,
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.monotonic,
        min_refresh_s: float = 30.0,
    ) -> None:
        self.url = url
        self._http = http
        self._clock = clock
        self._min_refresh_s = min_refresh_s
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        """The key for ``kid``, refetching the set once if it is unknown."""
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            recent = (
                self._fetched_at is not None
                and self._clock() - self._fetched_at < self._min_refresh_s
            )
            if kid not in self._keys and not recent:
                self._keys = await self._fetch()
                self._fetched_at = self._clock()
        return self._keys.get(kid)

    async def _fetch(self) -> dict[str, ec.EllipticCurvePublicKey]:
        try:
            answer = await self._http.get(self.url, timeout=5)
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            raise VerifierUnavailableError(f"cannot fetch {self.url}: {exc}") from exc
        return parse_jwks(answer.content)


__all__ = ["JwksCache", "PublicKeys", "parse_jwks"]
