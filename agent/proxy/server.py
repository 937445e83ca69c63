"""The loopback proxy: HTTP/1.1 from the tool (h11 on asyncio), HTTPS to the gateway (httpx).

Per request: (1) the per-run secret admits it, (2) the tool's credentials are dropped and the
device's token and a fresh DPoP proof are set (RFC 9449 section 7.1), (3) a ``use_dpop_nonce``
challenge is answered once with the gateway's nonce (section 9), (4) the answer streams back
chunk by chunk as it arrives, so server-sent events are never held back.
"""

from __future__ import annotations

import asyncio
import json

import h11
import httpx

from agent.client import tls_trust_failure
from agent.errors import AccessDeniedError, AgentError, ServerUnreachableError
from agent.proxy.credentials import IssuedToken, RequestCredentials
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


def nonce_challenge(response: httpx.Response) -> str | None:
    """The gateway's new nonce if ``response`` is a ``use_dpop_nonce`` challenge."""
    if response.status_code not in (400, 401):
        return None
    nonce: str = response.headers.get("dpop-nonce", "")
    challenge: str = response.headers.get("www-authenticate", "")
    return nonce if nonce and "use_dpop_nonce" in challenge else None


def _refusal_for(exc: AgentError) -> ProxyRefusal:
    """403 for what the user must act on (denied, revoked, consent), 502 while unreachable:
    tools retry a 5xx, and stop on a 403 with the message shown."""
    if isinstance(exc, AccessDeniedError):
        reasons = "; ".join(exc.reasons) or str(exc)
        return ProxyRefusal(403, f"envattest: access denied by policy ({reasons})")
    if isinstance(exc, ServerUnreachableError):
        return ProxyRefusal(502, f"envattest: cannot obtain an access token: {exc}")
    return ProxyRefusal(403, f"envattest: no access token: {exc}")


class ProxyServer:
    """Forwards admitted requests to one upstream with the device's credential."""

    def __init__(
        self,
        *,
        upstream: Upstream,
        secret: RunSecret,
        credentials: RequestCredentials,
        client: httpx.AsyncClient,
    ) -> None:
        self.upstream = upstream
        self.secret = secret
        self.credentials = credentials
        self.client = client

    async def listen(self, port: int = 0) -> asyncio.Server:
        """Listen on 127.0.0.1 only (``port`` 0: a free one)."""
        return await asyncio.start_server(self.serve_connection, host="127.0.0.1", port=port)

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
                await self._refuse(conn, writer, ProxyRefusal(400, f"bad request: {exc}"))
        except (ConnectionError, h11.LocalProtocolError, httpx.HTTPError):
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
        method = request.method.decode("ascii")
        headers = request_headers(request.headers)
        # (2) the device's credential replaces the tool's
        token = await self._token()
        response = await self._send(method, url, headers, body, token)
        # (3) one retry when the gateway asks for its DPoP nonce (RFC 9449 section 9)
        nonce = nonce_challenge(response) if token.dpop_bound else None
        if nonce is not None:
            self.credentials.nonce = nonce
            await response.aclose()
            response = await self._send(method, url, headers, body, token)
        if response.status_code == 401 and nonce_challenge(response) is None:
            self.credentials.tokens.invalidate(token)  # revoked? the next request re-attests
        # (4) stream the answer back unbuffered
        try:
            if fresh_nonce := response.headers.get("dpop-nonce"):
                self.credentials.nonce = fresh_nonce
            await self._relay(conn, writer, response)
        finally:
            await response.aclose()

    async def _token(self) -> IssuedToken:
        try:
            return await self.credentials.tokens.current()
        except AgentError as exc:
            raise _refusal_for(exc) from exc

    async def _send(
        self, method: str, url: str, headers: list[tuple[bytes, bytes]], body: bytes,
        token: IssuedToken,
    ) -> httpx.Response:  # fmt: skip
        try:
            auth = await self.credentials.headers(method, url, token)
        except AgentError as exc:
            raise _refusal_for(exc) from exc
        # httpx.Request, not client.build_request: no client default headers are added
        request = httpx.Request(method, url, headers=[*headers, *auth], content=body)
        try:
            return await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            if tls_trust_failure(exc) is not None:
                raise ProxyRefusal(
                    502,
                    f"envattest proxy: the TLS certificate of {self.upstream.origin} is not "
                    "trusted; if your organisation uses a private CA, pass --ca-file CA.pem",
                ) from exc
            raise ProxyRefusal(
                502,
                f"envattest proxy: cannot reach the gateway at {self.upstream.origin} "
                f"({exc.__class__.__name__}: {exc}); check --upstream and the network",
            ) from exc

    async def _relay(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, response: httpx.Response
    ) -> None:
        head = h11.Response(
            status_code=response.status_code,
            headers=response_headers(response.headers.raw),
            reason=response.reason_phrase.encode("ascii", errors="replace"),
        )
        writer.write(conn.send(head))
        await writer.drain()
        async for chunk in response.aiter_raw():
            writer.write(conn.send(h11.Data(data=chunk)))
            await writer.drain()
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()

    async def _refuse(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, refusal: ProxyRefusal
    ) -> None:
        if conn.our_state is not h11.SEND_RESPONSE and conn.our_state is not h11.IDLE:
            return  # an answer is already under way; the connection will just close
        body = refusal_body(refusal.message)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        try:
            writer.write(conn.send(h11.Response(status_code=refusal.status, headers=headers)))
            writer.write(conn.send(h11.Data(data=body)))
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
        except (ConnectionError, h11.LocalProtocolError):
            pass
