"""The loopback proxy in-process against a real upstream on loopback: who may use it, what
reaches the gateway, proofs, the nonce challenge, and unbuffered streaming."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from agent.proxy.credentials import IssuedToken
from agent.proxy.rewrite import Upstream, UpstreamError, request_headers
from agent.proxy.running import BackgroundProxy, ProxyEndpoint, device_proof_factory
from agent.proxy.secret import RunSecret
from attest.dpop import verify_proof
from attest.jose import parse_compact
from attest.jwk import jwk_thumbprint, load_public_jwk
from attest.keys.software import SoftwareKey
from tests.stubs.paced_sse import PacedSse, event_bytes, paced_sse

TOKEN = "device.access.token"
DPOP = "DPoP"


def _fixed_token(token_type: str = DPOP) -> Callable[[ProxyEndpoint], Callable[[], IssuedToken]]:
    def obtain_for(_endpoint: ProxyEndpoint) -> Callable[[], IssuedToken]:
        return lambda: IssuedToken(TOKEN, token_type, time.time(), time.time() + 600)

    return obtain_for


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> SoftwareKey:
    return SoftwareKey.create(tmp_path_factory.mktemp("key") / "device-key.pem")


@contextmanager
def running(upstream: str, key: SoftwareKey, token_type: str = DPOP) -> Iterator[ProxyEndpoint]:
    proxy = BackgroundProxy(
        upstream=Upstream.parse(upstream),
        obtain_for=_fixed_token(token_type),
        proof=device_proof_factory(key),
    )
    endpoint = proxy.start()
    try:
        yield endpoint
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def stub() -> Iterator[PacedSse]:
    with paced_sse(events=4, interval_s=0.15) as api:
        yield api


@pytest.fixture(scope="module")
def endpoint(stub: PacedSse, key: SoftwareKey) -> Iterator[ProxyEndpoint]:
    with running(stub.url, key) as proxy:
        yield proxy


def test_listens_on_loopback_only_and_refuses_requests_without_the_secret(
    endpoint: ProxyEndpoint, stub: PacedSse
) -> None:
    stub.requests.clear()
    assert endpoint.listen_url.startswith("http://127.0.0.1:")
    wrong = RunSecret.generate().path_prefix
    for url, headers in (
        (endpoint.listen_url + "/v1/messages", {}),
        (endpoint.listen_url + wrong + "/v1/messages", {}),
        (endpoint.listen_url + "/v1/messages", {"X-Envattest-Proxy-Secret": "guess"}),
        (endpoint.base_url + "x/v1/messages", {}),  # the secret must be a whole segment
    ):
        answer = httpx.post(url, headers=headers, content=b"{}")
        assert answer.status_code == 403, url
        assert "per-run secret" in answer.json()["error"]["message"]
    assert stub.requests == []  # nothing reached the gateway


def test_the_secret_in_the_header_admits_and_is_not_forwarded(
    endpoint: ProxyEndpoint, stub: PacedSse
) -> None:
    stub.requests.clear()
    answer = httpx.get(
        endpoint.listen_url + "/v1/models?limit=2",
        headers={"X-Envattest-Proxy-Secret": endpoint.secret.value},
    )
    assert answer.status_code == 200
    seen = stub.requests[-1]
    assert seen.path == "/v1/models?limit=2"
    assert "x-envattest-proxy-secret" not in seen.headers


def test_the_tools_credentials_are_replaced_by_the_token_and_a_proof(
    endpoint: ProxyEndpoint, stub: PacedSse, key: SoftwareKey
) -> None:
    stub.requests.clear()
    tool_headers = {
        "Authorization": "Bearer sk-tool-key",
        "X-Api-Key": "sk-tool-key",
        "x-goog-api-key": "tool-key",
        "api-key": "tool-key",
        "DPoP": "forged.proof.value",
        "anthropic-version": "2023-06-01",
    }
    answer = httpx.post(
        endpoint.base_url + "/v1/messages?beta=true", headers=tool_headers, content=b'{"a":1}'
    )
    assert answer.status_code == 200
    seen = stub.requests[-1]
    assert seen.path == "/v1/messages?beta=true"
    assert seen.body == b'{"a":1}'
    assert "tool-key" not in repr(seen.headers)
    assert "forged" not in seen.headers["dpop"]
    assert {"x-api-key", "x-goog-api-key", "api-key"}.isdisjoint(seen.headers)
    assert seen.headers["authorization"] == f"DPoP {TOKEN}"
    assert seen.headers["anthropic-version"] == "2023-06-01"  # the rest passes unchanged
    proof = verify_proof(
        seen.headers["dpop"],
        expected_htm="POST",
        expected_htu=f"{stub.url}/v1/messages",
        expected_jkt=jwk_thumbprint(load_public_jwk(key.public_jwk())),
        access_token=TOKEN,
        now=time.time(),
    )
    assert proof.htm == "POST"


def test_every_request_gets_a_fresh_proof(endpoint: ProxyEndpoint, stub: PacedSse) -> None:
    stub.requests.clear()
    with httpx.Client() as client:  # one kept-alive connection
        for _ in range(3):
            assert client.get(endpoint.base_url + "/v1/models").status_code == 200
    proofs = [r.headers["dpop"] for r in stub.requests]
    assert len(set(proofs)) == 3


def test_a_bearer_token_travels_as_bearer_without_a_proof(stub: PacedSse, key: SoftwareKey) -> None:
    with running(stub.url, key, token_type="Bearer") as endpoint:
        stub.requests.clear()
        assert httpx.get(endpoint.base_url + "/v1/models").status_code == 200
    assert stub.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"
    assert "dpop" not in stub.requests[-1].headers


def test_events_stream_through_as_they_are_sent(endpoint: ProxyEndpoint, stub: PacedSse) -> None:
    arrivals: list[float] = []
    body = b""
    start = time.perf_counter()
    with httpx.stream("POST", endpoint.base_url + "/v1/messages", content=b"{}") as answer:
        assert answer.headers["content-type"] == "text/event-stream"
        for chunk in answer.iter_raw():
            arrivals.append(time.perf_counter() - start)
            body += chunk
    assert body == b"".join(event_bytes(i) for i in range(stub.events))
    total = arrivals[-1]
    # four events 150 ms apart: the first must arrive long before the last
    assert total >= 3 * stub.interval_s
    assert arrivals[0] < total - 2 * stub.interval_s, arrivals


class _NonceGateway(BaseHTTPRequestHandler):
    """Answers ``use_dpop_nonce`` until a proof carries the current nonce."""

    protocol_version = "HTTP/1.1"
    nonces: list[str]
    proofs: list[str]

    def do_GET(self) -> None:
        proof = self.headers.get("DPoP", "")
        self.proofs.append(proof)
        nonce = json.loads(parse_compact(proof).payload).get("nonce")
        if nonce != self.nonces[0] or len(self.nonces) > 1:
            if len(self.nonces) > 1:  # a gateway that wants a new nonce on every request
                self.nonces.pop(0)
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'DPoP error="use_dpop_nonce"')
            self.send_header("DPoP-Nonce", self.nonces[0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args: object) -> None:
        pass


@contextmanager
def nonce_gateway(nonces: list[str]) -> Iterator[tuple[str, list[str]]]:
    proofs: list[str] = []
    handler = type("Gw", (_NonceGateway,), {"nonces": nonces, "proofs": proofs})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", proofs
    finally:
        server.shutdown()
        server.server_close()


def test_a_nonce_challenge_is_answered_once_and_the_nonce_kept(key: SoftwareKey) -> None:
    with nonce_gateway(["n-1"]) as (url, proofs), running(url, key) as endpoint:
        assert httpx.get(endpoint.base_url + "/r").text == "ok"
        assert len(proofs) == 2  # challenged, then answered with the nonce
        assert httpx.get(endpoint.base_url + "/r").text == "ok"
        assert len(proofs) == 3  # the nonce was remembered: no second challenge


def test_a_second_challenge_in_a_row_reaches_the_tool(key: SoftwareKey) -> None:
    with (
        nonce_gateway(["n-1", "n-2", "n-3", "n-4"]) as (url, proofs),
        running(url, key) as endpoint,
    ):
        answer = httpx.get(endpoint.base_url + "/r")
    assert answer.status_code == 401
    assert len(proofs) == 2  # one retry, never a loop


def test_an_unreachable_gateway_is_a_502_that_says_what_to_check(key: SoftwareKey) -> None:
    with running("http://127.0.0.1:9", key) as endpoint:
        answer = httpx.get(endpoint.base_url + "/v1/models")
    assert answer.status_code == 502
    assert "cannot reach the gateway at http://127.0.0.1:9" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://gateway.example", "plain http"),
        ("ftp://gateway.example", "must be an https:// URL"),
        ("https://user:pw@gateway.example", "must not carry credentials"),
        ("https://gateway.example/?q=1", "must not carry credentials, a query"),
        ("https://gateway.example:99999", "is not a URL"),
    ],
)
def test_bad_upstreams_are_refused_with_the_reason(url: str, message: str) -> None:
    with pytest.raises(UpstreamError, match=message):
        Upstream.parse(url)


def test_upstream_urls_keep_the_base_path_and_the_query() -> None:
    upstream = Upstream.parse("https://gw.example:8443/anthropic/")
    assert upstream.url == "https://gw.example:8443/anthropic"
    assert upstream.url_for(b"/v1/messages?beta=true") == (
        "https://gw.example:8443/anthropic/v1/messages?beta=true"
    )
    with pytest.raises(UpstreamError, match="origin-form"):
        upstream.url_for(b"http://elsewhere.example/")


def test_hop_by_hop_and_connection_named_headers_stop_at_the_proxy() -> None:
    kept = request_headers(
        [
            (b"connection", b"keep-alive, x-private"),
            (b"x-private", b"1"),
            (b"transfer-encoding", b"chunked"),
            (b"proxy-authorization", b"Basic x"),
            (b"host", b"127.0.0.1"),
            (b"expect", b"100-continue"),  # the proxy answers it; the body goes out whole
            (b"content-type", b"application/json"),
        ]
    )
    assert kept == [(b"content-type", b"application/json")]


def test_a_denied_attestation_stops_the_start(key: SoftwareKey, tmp_path: Path) -> None:
    from agent.errors import AccessDeniedError

    def refuse() -> IssuedToken:
        raise AccessDeniedError("denied", ["baseurl: relay.example is not allowed"])

    proxy = BackgroundProxy(
        upstream=Upstream.parse("http://127.0.0.1:9"),
        obtain_for=lambda _endpoint: refuse,
        proof=device_proof_factory(key),
    )
    with pytest.raises(AccessDeniedError, match="denied"):
        proxy.start()


def test_accepted_connections_have_nagle_off() -> None:
    """With Nagle on, every streamed chunk after the first waits for a delayed ACK (40 ms)."""
    import asyncio
    import socket

    from agent.proxy.running import bind_loopback

    async def scenario() -> int:
        seen: list[int] = []

        async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        sock = bind_loopback(0)
        server = await asyncio.start_server(accept, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname())
        while not seen:
            await asyncio.sleep(0.01)
        writer.close()
        server.close()
        return seen[0]

    assert asyncio.run(scenario()) != 0


def test_a_malformed_request_gets_a_400_that_names_the_proxy(
    endpoint: ProxyEndpoint, stub: PacedSse
) -> None:
    import socket

    stub.requests.clear()
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=10) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"envattest proxy: bad request" in answer
    assert stub.requests == []
