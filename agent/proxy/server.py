"""The loopback proxy: HTTP/1.1 from the tool and to the gateway, h11 on asyncio both ways.

Per request: (1) the per-run secret admits it, (2) the tool's credentials are dropped and the
device's token and a fresh DPoP proof are set (RFC 9449 section 7.1), (3) a ``use_dpop_nonce``
challenge is answered once with the gateway's nonce (section 9), (4) the answer streams back
chunk by chunk as it arrives, so server-sent events are never held back. A kept-alive
connection the gateway closed at the moment of reuse is replaced and the request sent again,
with a new proof, only for idempotent methods (``pool.retry_safe``).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import h11

from agent.errors import AccessDeniedError, AgentError, ServerUnreachableError
from agent.proxy.credentials import IssuedToken, RequestCredentials
from agent.proxy.h11client import GatewayError, StaleConnectionError, UpstreamResponse
from agent.proxy.pool import ConnectionPool, GatewayTlsError, retry_safe
from agent.proxy.rewrite import Upstream, UpstreamError, request_headers, response_headers
from agent.proxy.secret import SECRET_HEADER, RunSecret

MAX_REQUEST_BODY = 64 * 1024 * 1024
"""Request bodies are held once so that a nonce challenge can be answered by sending again."""
MAX_REQUEST_HEAD = 64 * 1024
READ_SIZE = 64 * 1024
_SECRET_HEADER = SECRET_HEADER.encode()


class ProxyRefusal(Exception):
    """A request the proxy answers itself, with a status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def refusal_body(message: str) -> bytes:
    """An error body both Anthropic- and OpenAI-style clients display (``error.message``)."""
    doc = {"type": "error", "error": {"type": "envattest_proxy_error", "message": message}}
    return json.dumps(doc).encode()


def nonce_challenge(response: UpstreamResponse) -> str | None:
    """The gateway's new nonce if ``response`` is a ``use_dpop_nonce`` challenge."""
    if response.status_code not in (400, 401):
        return None
    nonce = response.header(b"dpop-nonce")
    return nonce if nonce and "use_dpop_nonce" in response.header(b"www-authenticate") else None


def _refusal_for(exc: AgentError) -> ProxyRefusal:
    """403 for what the user must act on (denied, revoked, consent), 502 while unreachable:
    tools retry a 5xx, and stop on a 403 with the message shown."""
    if isinstance(exc, AccessDeniedError):
        reasons = "; ".join(exc.reasons) or str(exc)
        return ProxyRefusal(403, f"envattest: access denied by policy ({reasons})")
    if isinstance(exc, ServerUnreachableError):
        return ProxyRefusal(502, f"envattest: cannot obtain an access token: {exc}")
    return ProxyRefusal(403, f"envattest: no access token: {exc}")


@dataclass(frozen=True)
class _Outgoing:
    """A tool's request as it goes to the gateway, kept for a second attempt."""

    method: bytes
    target: bytes
    url: str
    headers: list[tuple[bytes, bytes]]
    body: bytes

    @property
    def method_text(self) -> str:
        return self.method.decode("ascii")


class ProxyServer:
    """Forwards admitted requests to one upstream with the device's credential."""

    def __init__(
        self,
        *,
        upstream: Upstream,
        secret: RunSecret,
        credentials: RequestCredentials,
        pool: ConnectionPool,
    ) -> None:
        self.upstream = upstream
        self.secret = secret
        self.credentials = credentials
        self.pool = pool
        self._base_path = upstream.base_path.encode("ascii")

    async def serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """One client connection: requests in turn until either side closes."""
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
        try:
            while True:
                event = await self._next_event(conn, reader, writer)
                if not isinstance(event, h11.Request):
                    return
                try:
                    body = await self._read_body(conn, reader, writer)
                    await self._answer(conn, writer, event, body)
                except ProxyRefusal as refusal:
                    await self._refuse(conn, writer, refusal)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return  # keep-alive ends here (close requested, or a body left unread)
                conn.start_next_cycle()
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                bad_request = ProxyRefusal(400, f"envattest proxy: bad request: {exc}")
                await self._refuse(conn, writer, bad_request)
        except (ConnectionError, h11.LocalProtocolError, GatewayError):
            pass  # the tool went away, or the gateway broke off mid-answer: close
        finally:
            writer.close()

    async def _next_event(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> object:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            if conn.they_are_waiting_for_100_continue:
                writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
            conn.receive_data(await reader.read(READ_SIZE))

    async def _read_body(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await self._next_event(conn, reader, writer)
            if isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            if not isinstance(event, h11.Data):
                raise ConnectionError("client closed the connection mid-request")
            size += len(event.data)
            if size > MAX_REQUEST_BODY:
                raise ProxyRefusal(413, "envattest: request body larger than 64 MiB")
            chunks.append(event.data)

    async def _answer(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, request: h11.Request, body: bytes
    ) -> None:
        # (1) the per-run secret, in the path or the header (DESIGN: agent proxy)
        given = next((v for n, v in request.headers if n == _SECRET_HEADER), None)
        target = self.secret.admit(request.target, given)
        if target is None:
            raise ProxyRefusal(
                403,
                "envattest proxy: this request lacks the per-run secret; start the tool "
                "with 'envattest exec --via-proxy -- TOOL'",
            )
        try:
            url = self.upstream.url_for(target)
        except (UpstreamError, UnicodeDecodeError):
            raise ProxyRefusal(400, "envattest proxy: only origin-form ASCII targets") from None
        outgoing = _Outgoing(
            method=request.method,
            target=self._base_path + target,
            url=url,
            headers=request_headers(request.headers),
            body=body,
        )
        # (2) the device's credential replaces the tool's
        token = await self._token()
        response = await self._send(outgoing, token)
        # (3) one retry when the gateway asks for its DPoP nonce (RFC 9449 section 9)
        nonce = nonce_challenge(response) if token.dpop_bound else None
        if nonce is not None:
            self.credentials.nonce = nonce
            await response.discard()
            response = await self._send(outgoing, token)
        if response.status_code == 401 and nonce_challenge(response) is None:
            self.credentials.tokens.invalidate(token)  # revoked? the next request re-attests
        # (4) stream the answer back unbuffered
        try:
            if fresh_nonce := response.header(b"dpop-nonce"):
                self.credentials.nonce = fresh_nonce
            await self._relay(conn, writer, response)
        finally:
            await response.aclose()

    async def _token(self) -> IssuedToken:
        try:
            return await self.credentials.tokens.current()
        except AgentError as exc:
            raise _refusal_for(exc) from exc

    async def _send(self, outgoing: _Outgoing, token: IssuedToken) -> UpstreamResponse:
        for attempt in (1, 2):
            try:  # a new proof per attempt: the gateway may have spent the first one
                auth = await self.credentials.headers(outgoing.method_text, outgoing.url, token)
            except AgentError as exc:
                raise _refusal_for(exc) from exc
            try:
                return await self.pool.request(
                    outgoing.method, outgoing.target, [*outgoing.headers, *auth], outgoing.body
                )
            except StaleConnectionError as exc:
                if attempt == 1 and retry_safe(outgoing.method):
                    continue
                raise self._unreachable(exc) from exc
            except GatewayTlsError as exc:
                raise ProxyRefusal(
                    502,
                    f"envattest proxy: the TLS certificate of {self.upstream.origin} is not "
                    f"trusted ({exc}); if your organisation uses a private CA, pass "
                    "--ca-file CA.pem",
                ) from exc
            except GatewayError as exc:
                raise self._unreachable(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _unreachable(self, exc: GatewayError) -> ProxyRefusal:
        return ProxyRefusal(
            502,
            f"envattest proxy: cannot reach the gateway at {self.upstream.origin} "
            f"({exc}); check --upstream and the network",
        )

    async def _relay(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, response: UpstreamResponse
    ) -> None:
        head = h11.Response(
            status_code=response.status_code,
            headers=response_headers(response.headers),
            reason=response.reason,
        )
        # what one read from the gateway delivered goes out in one write, at once: the head
        # with any body bytes that came with it, the last event with the end of the answer
        pending = conn.send(head) or b""
        async for data, ended in response.pieces():
            if data:
                pending += conn.send(h11.Data(data=data)) or b""
            if ended:
                pending += conn.send(h11.EndOfMessage()) or b""
            if pending:
                writer.write(pending)
                pending = b""
                await writer.drain()

    async def _refuse(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, refusal: ProxyRefusal
    ) -> None:
        if conn.our_state is not h11.SEND_RESPONSE and conn.our_state is not h11.IDLE:
            return  # an answer is already under way; the connection will just close
        body = refusal_body(refusal.message)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        try:
            head = conn.send(h11.Response(status_code=refusal.status, headers=headers)) or b""
            data = conn.send(h11.Data(data=body)) or b""
            writer.write(head + data + (conn.send(h11.EndOfMessage()) or b""))  # one segment
            await writer.drain()
        except (ConnectionError, h11.LocalProtocolError):
            pass
