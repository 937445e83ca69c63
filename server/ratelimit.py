"""Rate limits: token buckets per client address and per device, in process.

Each replica keeps its own buckets (a client behind a load balancer may get up to N times the
limit across N replicas; documented in docs/deploy.md). A bucket holds one minute's allowance
and refills continuously. Forward auth, introspection, JWKS and health are not limited here:
gateways call them for every request and authenticate differently.

A device id is public (it is in every token and every piece of evidence), so no bucket is
spent under a device id before the device's key has signed the request: before that proof a
request is counted under its client address only (IPv6 by /64). The device bucket is spent
after ``/v1/attest`` answers with a status that only follows a verified signature; before, it
is only looked at, so a flood under a victim's device id cannot lock the victim out.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from attest.b64 import b64url_decode
from attest.errors import FormatError
from attest.strictjson import JsonLimits, parse_json_object
from server.errors import RateLimitedError

UNLIMITED_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/v1/authz", "/v1/introspect", "/.well-known/jwks.json"}
)
ATTEST_PATH = "/v1/attest"
# /v1/attest answers these only after step (4) of server/verifier.py, the signature with the
# enrolled key, has passed: 200 allow, 400 malformed signal, 403 deny, 409 consent
PROVEN_STATUSES = frozenset({200, 400, 403, 409})
_HEADER_LIMITS = JsonLimits(max_bytes=1024, max_depth=2, max_members=8, max_string_chars=256)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """``per_minute`` requests per key per minute; 0 disables the limit."""

    def __init__(
        self,
        per_minute: int,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._monotonic = monotonic
        self._max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one token: 0.0 if allowed, else the seconds until one is available."""
        if self.capacity <= 0:
            return 0.0
        now = self._monotonic()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self._max_keys:
                    self._evict(now)
                bucket = self._buckets[key] = _Bucket(self.capacity, now)
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate

    def wait(self, key: str) -> float:
        """Like ``take`` without spending: 0.0 if a token is there, else the seconds to wait."""
        if self.capacity <= 0:
            return 0.0
        now = self._monotonic()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                return 0.0
            tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def _evict(self, now: float) -> None:
        # buckets that have refilled are indistinguishable from new ones: drop them first
        full = [
            k
            for k, b in self._buckets.items()
            if b.tokens + (now - b.updated) * self.rate >= self.capacity
        ]
        for key in full or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[key]


def attesting_device(body: bytes) -> str | None:
    """The device evidence names in its JWS header, unverified: only a bucket to look at."""
    head = body.split(b".", 1)[0]
    if len(head) > 2 * _HEADER_LIMITS.max_bytes:
        return None
    try:
        header = parse_json_object(b64url_decode(head.decode("ascii")), limits=_HEADER_LIMITS)
    except (FormatError, UnicodeDecodeError):
        return None
    kid = header.get("kid")
    return kid if isinstance(kid, str) and 0 < len(kid) <= 128 else None


def rate_limited(limit: str, wait_s: float) -> RateLimitedError:
    """The 429 problem for a bucket that is empty for ``wait_s`` more seconds."""
    return RateLimitedError(
        f"too many requests from this {limit}; retry after the Retry-After seconds",
        retry_after_s=max(1, math.ceil(wait_s)),
    )


class RateLimits:
    """Which bucket a request is counted in, and when."""

    def __init__(self, *, per_address: TokenBucketLimiter, per_device: TokenBucketLimiter) -> None:
        self.per_address = per_address
        self.per_device = per_device

    @staticmethod
    def applies(path: str) -> bool:
        """Whether the path is limited at all."""
        return path not in UNLIMITED_PATHS and not path.startswith("/v1/authz/")

    @staticmethod
    def device_scoped(path: str, method: str) -> bool:
        """Whether the request may be counted under a device once its key has signed it."""
        return path == ATTEST_PATH and method == "POST"

    def address_wait(self, key: str) -> float:
        """Spend one token of the address bucket: 0.0, or seconds to wait."""
        return self.per_address.take(key)

    def device_wait(self, device: str) -> float:
        """Look at the device's bucket without spending: 0.0, or seconds to wait."""
        return self.per_device.wait(device)

    def charge_device(self, device: str, status: int) -> None:
        """Spend from the device's bucket if the answer shows that its key signed."""
        if status in PROVEN_STATUSES:
            self.per_device.take(device)
