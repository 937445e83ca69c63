"""The one ASGI layer in front of the routes: client address, rate limits, body, metrics.

Pure ASGI, one function call per request, in this order:

(1) the client address (``server.limits``: the peer, or ``X-Forwarded-For`` from a trusted
    proxy); a forwarded address replaces ``scope["client"]`` for everything behind;
(2) the per-address rate limit (``server.ratelimit``), before any byte of the body is read;
(3) the body, whole, within ``max_body_bytes`` (413) and ``body_timeout_s`` (408), then
    replayed to the route;
(4) the per-device rate limit: looked at before ``/v1/attest`` runs, spent after it answered
    with a status that proves the device's key signed;
(5) the route: a hot path registered in ``server.fastroutes`` is answered here, on the event
    loop; anything else goes to the application;
(6) latency and status per route, and one log line per request (at info).

The request id (``server.requestid``) is set first, so every log line of the request has it.

Every refusal here is an RFC 9457 problem document like the routes' own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import InternalServerError, PayloadTooLargeError, ProblemError
from server.fastroutes import FastHandler, FastRoutes
from server.limits import (
    BodyDeadlines,
    ClientAddresses,
    declared_length,
    has_body,
    rate_limit_key,
)
from server.metrics import Metrics
from server.ratelimit import RateLimits, attesting_device, rate_limited
from server.requestid import HEADER as REQUEST_ID
from server.requestid import current_request_id, request_id

log = logging.getLogger("envattest.http")
_Status = Callable[[], int]
CLIENT_GONE = 499  # the status recorded when a client leaves before its body arrived
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


async def send_problem(send: Send, error: ProblemError, *, close: bool = False) -> None:
    """Answer with the problem document of ``error``; ``close`` ends the connection after it."""
    body = orjson.dumps(error.to_problem())
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.response_headers().items()]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands over the body already read, then the connection's own events."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


async def _answer(handler: FastHandler, scope: Scope, body: bytes, send: Send) -> None:
    """Run a hot path and send its reply, or its refusal as a problem document."""
    try:
        reply = await handler(scope, body)
    except ProblemError as error:
        await send_problem(send, error)
        return
    except Exception:
        log.exception("unhandled error on %s %s", scope["method"], scope["path"])
        await send_problem(send, InternalServerError("internal error; try again later"))
        return
    await send(
        {"type": "http.response.start", "status": reply.status, "headers": reply.raw_headers()}
    )
    await send({"type": "http.response.body", "body": reply.body})


class EdgeLayer:
    """Steps (1)-(5) of this module around the application."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        addresses: ClientAddresses,
        limits: RateLimits,
        metrics: Metrics,
        routes: Iterable[str],
        max_body_bytes: int,
        body_timeout_s: float,
        fast_routes: FastRoutes | None = None,
    ) -> None:
        self.app = app
        self.fast: FastRoutes = dict(fast_routes or {})
        self.addresses = addresses
        self.limits = limits
        self.metrics = metrics
        self.routes = frozenset(routes)
        self.max_body_bytes = max_body_bytes
        self.deadlines = BodyDeadlines(body_timeout_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        rid = request_id(scope)
        rid_header = (REQUEST_ID, rid.encode())
        context = current_request_id.set(rid)

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        def answered() -> int:
            return status

        try:
            if not await self._serve(scope, receive, recording_send, answered):
                status = CLIENT_GONE
        finally:
            self._observe(scope, status, time.perf_counter() - start)
            current_request_id.reset(context)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, answered: _Status) -> bool:
        """Steps (1)-(4); False if the client left before its body arrived."""
        path, method = str(scope["path"]), str(scope["method"])
        # (1) who is asking
        address = self.addresses.resolve(scope)
        client = scope.get("client")
        if client is None or client[0] != address:
            scope["client"] = (address, 0)
        body_expected = has_body(scope)
        # (2) per address, before the body is read
        if self.limits.applies(path):
            wait = self.limits.address_wait(rate_limit_key(address))
            if wait:
                self.metrics.rate_limited.labels("address").inc()
                await send_problem(send, rate_limited("address", wait), close=body_expected)
                return True
        # (3) the body, bounded in size and time
        body = b""
        if body_expected:
            try:
                declared = declared_length(scope)
                if declared is not None and declared > self.max_body_bytes:
                    raise PayloadTooLargeError(
                        f"request body is larger than {self.max_body_bytes} bytes; send less"
                    )
                read = await self.deadlines.read(receive, max_bytes=self.max_body_bytes)
            except ProblemError as error:
                await send_problem(send, error, close=True)
                return True
            if read is None:
                return False
            body, receive = read, _replay(read, receive)
        # (4) per device, spent only once the device's key has signed
        device = None
        if self.limits.device_scoped(path, method):
            device = attesting_device(body)
            wait = self.limits.device_wait(device) if device is not None else 0.0
            if wait:
                self.metrics.rate_limited.labels("device").inc()
                await send_problem(send, rate_limited("device", wait))
                return True
        # (5) the route
        handler = self.fast.get((method, path))
        if handler is None:
            await self.app(scope, receive, send)
        else:
            await _answer(handler, scope, body, send)
        if device is not None:
            self.limits.charge_device(device, answered())
        return True

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        # (6) metrics and the request log
        path = str(scope["path"])
        route = path if path in self.routes else "other"
        method = str(scope["method"])
        method = method if method in _METHODS else "other"  # bounded label values
        self.metrics.observe_request(route, method, status, seconds)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "%s %s %d %.1f ms",
                method,
                route,
                status,
                seconds * 1000,
                extra={"fields": {"method": method, "route": route, "status": status}},
            )
