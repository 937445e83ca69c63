"""Rate limits: token buckets per client IP and per device, in process.

Each replica keeps its own buckets (a client behind a load balancer may get up to N times the
limit across N replicas; documented in docs/deploy.md). A bucket holds one minute's allowance
and refills continuously. Forward auth, introspection, JWKS and health are not limited here:
gateways call them for every request and authenticate differently.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import RateLimitedError
from server.limits import client_address
from server.metrics import Metrics

UNLIMITED_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/v1/authz", "/v1/introspect", "/.well-known/jwks.json"}
)
_DEVICE_PATHS = frozenset({"/v1/challenge", "/v1/attest"})


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

    def _evict(self, now: float) -> None:
        # buckets that have refilled are indistinguishable from new ones: drop them first
        full = [
            k
            for k, b in self._buckets.items()
            if b.tokens + (now - b.updated) * self.rate >= self.capacity
        ]
        for key in full or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[key]


def device_of(path: str, body: bytes) -> str | None:
    """The device a challenge or evidence names (unverified: only a bucket key)."""
    try:
        if path == "/v1/challenge":
            value = json.loads(body).get("device_id")
        else:
            head = body.split(b".", 1)[0]
            value = json.loads(base64.urlsafe_b64decode(head + b"=" * (-len(head) % 4))).get("kid")
    except (ValueError, AttributeError, binascii.Error):
        return None
    return value if isinstance(value, str) and len(value) <= 128 else None


class RateLimitMiddleware:
    """429 with Retry-After when a client IP or a device is over its limit."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        per_ip: TokenBucketLimiter,
        per_device: TokenBucketLimiter,
        metrics: Metrics,
    ) -> None:
        self.app = app
        self.per_ip = per_ip
        self.per_device = per_device
        self.metrics = metrics

    async def _refuse(self, send: Send, limit: str, wait: float) -> None:
        self.metrics.rate_limited.labels(limit).inc()
        error = RateLimitedError(
            f"too many requests from this {limit}; retry after the Retry-After seconds",
            retry_after_s=max(1, math.ceil(wait)),
        )
        body = json.dumps(error.to_problem()).encode()
        headers = [(b"content-type", b"application/problem+json")]
        headers += [(k.lower().encode(), v.encode()) for k, v in error.response_headers().items()]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or path in UNLIMITED_PATHS or path.startswith("/v1/authz/"):
            await self.app(scope, receive, send)
            return
        wait = self.per_ip.take(client_address(scope))
        if wait:
            await self._refuse(send, "address", wait)
            return
        if path not in _DEVICE_PATHS or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        # read the (size-limited) body once to find the device, then replay it
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        device = device_of(path, body)
        if device is not None:
            wait = self.per_device.take(device)
            if wait:
                await self._refuse(send, "device", wait)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
