"""One HTTP/1.1 connection to the gateway (h11 over asyncio streams), used one request at a
time: the request goes out in one write, the answer comes back as a head and then its body
chunk by chunk, exactly as the gateway's reads deliver it (server-sent events are not held).

A connection that the gateway closed while it sat idle in the pool fails before any byte of
an answer arrives; that case raises ``StaleConnectionError`` so that the caller can decide
whether the request may be sent again (RFC 9110 section 9.2.2).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import h11

Headers = list[tuple[bytes, bytes]]

READ_SIZE = 64 * 1024
MAX_RESPONSE_HEAD = 64 * 1024
DISCARD_LIMIT = 64 * 1024
"""A refusal's body up to this size is read and dropped so that its connection is reused."""


class GatewayError(Exception):
    """The gateway could not be reached or broke off; the message says what happened."""


class StaleConnectionError(GatewayError):
    """A reused connection failed before any byte of the answer: nothing was processed, or
    the gateway closed the connection just as the request arrived."""


class UpstreamConnection:
    """An open connection; ``exchange`` sends one request and returns its answer's head."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        read_timeout_s: float,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._timeout = read_timeout_s
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_RESPONSE_HEAD)
        self.idle_since = 0.0
        """When the connection last went back to its pool (``ConnectionPool`` clock)."""

    def usable(self) -> bool:
        """Idle, and the gateway has not closed it (EOF is seen as soon as it arrives)."""
        return (
            self._h11.our_state is h11.IDLE
            and not self._reader.at_eof()
            and not self._writer.is_closing()
        )

    def close(self) -> None:
        """Close the socket (no wait for the peer)."""
        self._writer.close()

    async def exchange(
        self, request: h11.Request, body: bytes, *, release: Callable[[UpstreamConnection], None]
    ) -> UpstreamResponse:
        """Send ``request`` with ``body``; the answer's head (its body is read from it)."""
        conn = self._h11
        data = conn.send(request)
        if body:
            data += conn.send(h11.Data(data=body))
        data += conn.send(h11.EndOfMessage())
        try:
            try:
                self._writer.write(data)  # one write: head and body leave in few segments
                await self._writer.drain()
            except (ConnectionResetError, BrokenPipeError) as exc:
                raise StaleConnectionError(str(exc) or type(exc).__name__) from exc
            event = await self._next_event()
            while isinstance(event, h11.InformationalResponse):  # 100 Continue and the like
                event = await self._next_event()
        except StaleConnectionError:
            self.close()
            raise
        except (OSError, h11.ProtocolError, TimeoutError) as exc:
            self.close()
            raise GatewayError(_describe(exc)) from exc
        if not isinstance(event, h11.Response):
            self.close()
            raise GatewayError(f"the gateway answered with {type(event).__name__}")
        return UpstreamResponse(self, event, release)

    async def _next_event(self) -> object:
        conn = self._h11
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                async with asyncio.timeout(self._timeout):
                    data = await self._reader.read(READ_SIZE)
            except (ConnectionResetError, BrokenPipeError) as exc:
                if conn.their_state is h11.SEND_RESPONSE and not _answer_begun(conn):
                    raise StaleConnectionError(str(exc) or type(exc).__name__) from exc
                raise
            if not data and conn.their_state is h11.SEND_RESPONSE and not _answer_begun(conn):
                raise StaleConnectionError("the gateway closed the connection without answering")
            conn.receive_data(data)

    async def body_pieces(self) -> AsyncIterator[tuple[bytes, bool]]:
        """The body as the reads deliver it: before each read that would wait, what has
        arrived so far (the first time even if nothing has), and whether the body ended."""
        conn = self._h11
        pieces: list[bytes] = []
        first = True
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    if pieces or first:
                        yield b"".join(pieces), False
                        pieces, first = [], False
                    async with asyncio.timeout(self._timeout):
                        conn.receive_data(await self._reader.read(READ_SIZE))
                elif isinstance(event, h11.Data):
                    pieces.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    yield b"".join(pieces), True
                    return
                else:
                    raise GatewayError("the gateway closed the connection mid-answer")
        except (OSError, h11.ProtocolError, TimeoutError) as exc:
            self.close()
            raise GatewayError(_describe(exc)) from exc

    def finish(self) -> bool:
        """After a complete answer: ready for the next request (True) or closed (False)."""
        conn = self._h11
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
            return True
        self.close()
        return False


def _answer_begun(conn: h11.Connection) -> bool:
    # h11 keeps bytes it has not turned into an event yet; any such byte means an answer began
    return bool(conn.trailing_data[0])


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer within the read timeout"
    return str(exc) or type(exc).__name__


class UpstreamResponse:
    """The gateway's answer: status, headers, and the body read once through ``chunks``."""

    def __init__(
        self,
        connection: UpstreamConnection,
        head: h11.Response,
        release: Callable[[UpstreamConnection], None],
    ) -> None:
        self._connection: UpstreamConnection | None = connection
        self._release = release
        self._complete = False
        self.status_code = head.status_code
        self.reason = bytes(head.reason)
        self.headers: Headers = list(head.headers)
        """Names in lower case (h11 normalizes them)."""

    def header(self, name: bytes) -> str:
        """The first value of header ``name`` (lower case), or an empty string."""
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return ""

    async def pieces(self) -> AsyncIterator[tuple[bytes, bool]]:
        """``(data, ended)`` as the gateway's bytes arrive (``body_pieces``); at the end the
        connection returns to its pool."""
        connection = self._connection
        if connection is None:
            return
        async for data, ended in connection.body_pieces():
            if ended:
                self._complete = True
            yield data, ended
        await self.aclose()

    async def discard(self) -> None:
        """Read and drop a short body (a refusal's) so that the connection can be reused."""
        size = 0
        async for data, _ in self.pieces():
            size += len(data)
            if size > DISCARD_LIMIT:
                break
        await self.aclose()

    async def aclose(self) -> None:
        """Give the connection back when the answer was read to its end; close it otherwise."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._complete and connection.finish():
            self._release(connection)
        else:
            connection.close()
