"""Kept-alive connections to the gateway's origin, over TLS with the OS trust store (plus
``--ca-file``) or plain TCP for a loopback gateway, directly or through an HTTP proxy's
``CONNECT`` tunnel (``HTTPS_PROXY``, see ``tunnel``).

Opening a connection costs a TCP handshake and, for HTTPS, a TLS handshake; a reused one
costs nothing, so idle connections wait here for the next request. A connection the gateway
closed while idle is noticed (EOF) and dropped before use; the rare one closed at the very
moment of reuse raises ``StaleConnectionError`` and the caller sends again only what is safe
to send twice (``retry_safe``).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

from agent.proxy.h11client import (
    GatewayError,
    Headers,
    StaleConnectionError,
    UpstreamConnection,
    UpstreamResponse,
)

MAX_IDLE = 16
"""Idle connections kept per origin (a tool rarely has more requests in flight)."""
IDLE_S = 30.0
"""An idle connection older than this is closed rather than reused: gateways drop them
(nginx after 75 s, many others sooner), and a fresh one is cheaper than a failed reuse."""
RETRY_SAFE = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})
"""Idempotent methods (RFC 9110 section 9.2.2): sent again after a stale connection."""


class GatewayTlsError(GatewayError):
    """The gateway's certificate did not verify against the trust store (and ``--ca-file``)."""


def retry_safe(method: bytes) -> bool:
    """Whether a request with ``method`` may be sent again when its connection went stale."""
    return method in RETRY_SAFE


@dataclass(frozen=True)
class Origin:
    """Scheme, host and port of the gateway, and the ``Host`` header for it."""

    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, origin: str) -> Origin:
        """``https://host[:port]`` (as ``Upstream.origin`` holds it)."""
        parts = urlsplit(origin)
        default = 443 if parts.scheme == "https" else 80
        return cls(parts.scheme, parts.hostname or "", parts.port or default)

    @property
    def host_header(self) -> bytes:
        """``host[:port]``, the port left out when it is the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return (host if self.port == default else f"{host}:{self.port}").encode("ascii")


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Tunnel = Callable[[Origin], Awaitable[Streams]]
"""Opens a plain stream to ``origin`` through the organisation's proxy (``tunnel``)."""


class ConnectionPool:
    """Connections to one origin; ``request`` borrows one, the answer gives it back."""

    def __init__(
        self,
        origin: Origin,
        *,
        tls: ssl.SSLContext | None,
        connect_timeout_s: float,
        read_timeout_s: float,
        tunnel: Tunnel | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.origin = origin
        self._tls = tls
        self._connect_timeout = connect_timeout_s
        self._read_timeout = read_timeout_s
        self._tunnel = tunnel
        self._clock = clock
        self._idle: list[UpstreamConnection] = []
        self.opened = 0
        """Connections opened so far (what keep-alive saves shows here)."""

    async def request(
        self, method: bytes, target: bytes, headers: Headers, body: bytes
    ) -> UpstreamResponse:
        """Send one request; raises ``StaleConnectionError`` only for a reused connection."""
        connection = self._idle_connection()
        reused = connection is not None
        if connection is None:
            connection = await self._connect()
        length = [(b"content-length", b"%d" % len(body))] if body or method in _WITH_BODY else []
        head = h11.Request(
            method=method,
            target=target,
            headers=[(b"host", self.origin.host_header), *headers, *length],
        )
        try:
            return await connection.exchange(head, body, release=self._release)
        except StaleConnectionError as exc:
            if reused:
                raise
            raise GatewayError(str(exc)) from exc

    def _idle_connection(self) -> UpstreamConnection | None:
        now = self._clock()
        while self._idle:
            connection = self._idle.pop()  # the most recently used is the likeliest alive
            if connection.usable() and now - connection.idle_since < IDLE_S:
                return connection
            connection.close()
        return None

    def _release(self, connection: UpstreamConnection) -> None:
        if len(self._idle) >= MAX_IDLE or not connection.usable():
            connection.close()
            return
        connection.idle_since = self._clock()
        self._idle.append(connection)

    async def _connect(self) -> UpstreamConnection:
        origin = self.origin
        tls_name = origin.host if self._tls is not None else None
        try:
            async with asyncio.timeout(self._connect_timeout):
                if self._tunnel is not None:
                    reader, writer = await self._tunnel(origin)
                    if self._tls is not None:
                        await writer.start_tls(self._tls, server_hostname=tls_name)
                else:
                    reader, writer = await asyncio.open_connection(
                        origin.host, origin.port, ssl=self._tls, server_hostname=tls_name
                    )
        except ssl.SSLCertVerificationError as exc:
            raise GatewayTlsError(exc.verify_message or str(exc)) from exc
        except TimeoutError as exc:
            raise GatewayError(f"no connection within {self._connect_timeout:.0f} s") from exc
        except (OSError, ssl.SSLError) as exc:
            raise GatewayError(f"{type(exc).__name__}: {exc}") from exc
        self.opened += 1  # asyncio's TCP transports already run without Nagle's delay
        return UpstreamConnection(reader, writer, read_timeout_s=self._read_timeout)

    async def aclose(self) -> None:
        """Close every idle connection."""
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


_WITH_BODY = frozenset({b"POST", b"PUT", b"PATCH"})
"""Methods whose empty body is still announced (``Content-Length: 0``), as clients do."""
