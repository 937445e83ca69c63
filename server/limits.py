"""Request limits at the edge: who the client is, and a body that is small and arrives in time.

The client address is the TCP peer unless the peer is a configured proxy (``trusted_proxies``
in server.toml, CIDRs, none by default): only then is ``X-Forwarded-For`` read, from the right,
skipping the trusted hops, so a client cannot choose the address its limits are counted under.
``Forwarded`` and ``X-Real-IP`` are never read.

The body is read whole before any handler runs (every body of protocol v1 is small): larger
than ``max_body_bytes`` is 413, not complete within ``body_timeout_s`` of the request head is
408 (slow-body clients cannot hold a connection), and both close the connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from starlette.types import Receive, Scope

from server.errors import BadRequestError, ConfigError, PayloadTooLargeError, RequestTimeoutError

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(values: Iterable[str]) -> tuple[IpNetwork, ...]:
    """``trusted_proxies`` entries as networks; raises ConfigError naming a bad entry."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ConfigError(
                f"trusted_proxies: {value!r} is not an IP address or network; write CIDRs "
                'such as "10.0.0.0/8" or "127.0.0.1/32"'
            ) from None
    return tuple(networks)


class ClientAddresses:
    """Resolves the client address of a request from its peer and the trusted proxies."""

    def __init__(self, trusted: Iterable[IpNetwork] = ()) -> None:
        self.trusted = tuple(trusted)
        self.is_trusted: Callable[[str], bool] = lru_cache(maxsize=4096)(self._is_trusted)

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def resolve(self, scope: Scope) -> str:
        """The client's address; ``X-Forwarded-For`` only when the peer is a trusted proxy."""
        client = scope.get("client")
        peer = str(client[0]) if client else "unknown"
        if not self.trusted or not self.is_trusted(peer):
            return peer
        hops = [
            hop.strip()
            for name, value in scope["headers"]
            if name == b"x-forwarded-for"
            for hop in value.decode("latin-1").split(",")
        ]
        # (1) rightmost first: every hop right of the client was appended by a trusted proxy
        address = peer
        for hop in reversed(hops):
            if self.is_trusted(hop):
                address = hop
                continue
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                # (2) a proxy wrote something that is not an address: count the proxy itself
                return address
        return address


def rate_limit_key(address: str) -> str:
    """The key an address is counted under: IPv6 by its /64 (one subscriber's prefix)."""
    if ":" not in address:
        return address
    try:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    except ValueError:
        return address


def declared_length(scope: Scope) -> int | None:
    """Content-Length, None without one; raises on a malformed value."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            if not value.isdigit():
                raise BadRequestError("Content-Length must be a decimal number of bytes")
            return int(value)
    return None


def has_body(scope: Scope) -> bool:
    """Whether the request head announces a body (Content-Length > 0 or chunked)."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value not in (b"0",)):
            return True
    return False


async def _read_all(receive: Receive, max_bytes: int) -> bytes | None:
    chunks: list[bytes] = []
    seen = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > max_bytes:
            raise PayloadTooLargeError(f"request body is larger than {max_bytes} bytes; send less")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class BodyDeadlines:
    """Reads bodies within ``timeout_s`` of the request head.

    One watchdog per event loop, ticking while bodies are being read, cancels the reads past
    their deadline: a timer per request (``asyncio.timeout``) would cost more than reading
    the body. A 408 therefore comes between ``timeout_s`` and ``timeout_s`` plus one tick.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.tick_s = max(0.05, min(1.0, timeout_s / 10))
        self._reading: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._watched: set[asyncio.AbstractEventLoop] = set()

    def _error(self) -> RequestTimeoutError:
        return RequestTimeoutError(
            f"the request body did not arrive within {self.timeout_s:g} s; send it at once"
        )

    async def read(self, receive: Receive, *, max_bytes: int) -> bytes | None:
        """The whole body, or None if the client disconnected; raises 413 or 408 problems."""
        task = asyncio.current_task()
        if task is None:  # not inside a task: no watchdog can reach us
            try:
                async with asyncio.timeout(self.timeout_s):
                    return await _read_all(receive, max_bytes)
            except TimeoutError:
                raise self._error() from None
        loop = task.get_loop()
        self._reading[task] = loop.time() + self.timeout_s
        if loop not in self._watched:
            self._watched.add(loop)
            loop.call_later(self.tick_s, self._tick, loop)
        try:
            return await _read_all(receive, max_bytes)
        except asyncio.CancelledError:
            if task not in self._expired:
                raise  # cancelled by someone else (shutdown): not ours to swallow
            task.uncancel()
            raise self._error() from None
        finally:
            self._reading.pop(task, None)
            self._expired.discard(task)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        mine = [(t, d) for t, d in self._reading.items() if t.get_loop() is loop]
        for task, deadline in mine:
            if deadline <= now:
                del self._reading[task]
                self._expired.add(task)
                task.cancel()
        if any(deadline > now for _, deadline in mine):
            loop.call_later(self.tick_s, self._tick, loop)
        else:
            self._watched.discard(loop)
