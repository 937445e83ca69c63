"""The proxy's side toward the gateway: kept-alive connections, answers relayed piece by piece,
a connection dropped at reuse replaced only for idempotent requests, TLS verification, and the
organisation's HTTP proxy (``HTTPS_PROXY`` / ``NO_PROXY``)."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress

import httpx
import pytest

from agent.client import ssl_context
from agent.proxy.credentials import IssuedToken
from agent.proxy.pool import Origin
from agent.proxy.rewrite import Upstream
from agent.proxy.running import BackgroundProxy, ProxyEndpoint, device_proof_factory
from agent.proxy.tunnel import ProxySettingError, exempt, gateway_proxy
from attest.jose import parse_compact
from attest.keys.software import SoftwareKey
from tests.agent.proxy_scripted_gateway import Answer, Seen, scripted_gateway
from tests.agent.tlsfixtures import PrivateCa, make_private_ca
from tests.stubs.paced_sse import event_bytes, paced_sse

TOKEN = "device.access.token"


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> SoftwareKey:
    return SoftwareKey.create(tmp_path_factory.mktemp("key") / "device-key.pem")


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> PrivateCa:
    return make_private_ca(tmp_path_factory.mktemp("ca"))


@contextmanager
def running(
    upstream: str,
    key: SoftwareKey,
    *,
    tls: ssl.SSLContext | None = None,
    proxy_env: Mapping[str, str] | None = None,
) -> Iterator[ProxyEndpoint]:
    proxy = BackgroundProxy(
        upstream=Upstream.parse(upstream),
        obtain_for=lambda _e: lambda: IssuedToken(TOKEN, "DPoP", time.time(), time.time() + 600),
        proof=device_proof_factory(key),
        tls=tls,
        proxy_env=proxy_env,
    )
    endpoint = proxy.start()
    try:
        yield endpoint
    finally:
        proxy.stop()


def _htu(seen: Seen) -> str:
    return str(json.loads(parse_compact(seen.headers["dpop"]).payload)["htu"])


def test_requests_from_many_tool_connections_share_one_gateway_connection(
    key: SoftwareKey,
) -> None:
    with (
        scripted_gateway(lambda _seen: Answer(body=b"ok")) as gateway,
        running(gateway.url + "/prefix", key) as endpoint,
    ):
        with httpx.Client() as client:
            for _ in range(4):
                assert client.get(endpoint.base_url + "/r?x=1").text == "ok"
        for _ in range(3):  # a new tool connection each time
            assert httpx.post(endpoint.base_url + "/r", content=b"{}").text == "ok"
    assert gateway.connections == 1
    assert [s.target for s in gateway.seen] == ["/prefix/r?x=1"] * 4 + ["/prefix/r"] * 3
    assert len({s.headers["dpop"] for s in gateway.seen}) == 7  # a fresh proof each
    assert _htu(gateway.seen[0]) == gateway.url + "/prefix/r"


def test_concurrent_streams_get_their_own_connections_and_all_return_to_the_pool(
    key: SoftwareKey,
) -> None:
    release = threading.Event()
    pieces = [(None, b"data: start\n\n"), (release, b"data: end\n\n")]
    with (
        scripted_gateway(lambda _seen: Answer(pieces=pieces)) as gateway,
        running(gateway.url, key) as endpoint,
    ):
        url = endpoint.base_url + "/v1/messages"
        with (
            httpx.stream("POST", url, content=b"{}", timeout=5) as first,
            httpx.stream("POST", url, content=b"{}", timeout=5) as second,
        ):
            streams = [first.iter_raw(), second.iter_raw()]
            assert [next(chunks) for chunks in streams] == [b"data: start\n\n"] * 2  # both open
            release.set()
            assert [b"".join(chunks) for chunks in streams] == [b"data: end\n\n"] * 2
        for _ in range(2):
            assert httpx.post(url, content=b"{}", timeout=5).status_code == 200
    assert gateway.connections == 2  # the two kept-alive ones served the later requests


def test_a_stream_that_arrives_in_pieces_reaches_the_tool_in_pieces(key: SoftwareKey) -> None:
    second_may_go = threading.Event()
    pieces = [(None, b"data: one\n\n"), (second_may_go, b"data: two\n\n")]
    with (
        scripted_gateway(lambda _seen: Answer(pieces=pieces)) as gateway,
        running(gateway.url, key) as endpoint,
        httpx.stream("POST", endpoint.base_url + "/r", content=b"{}", timeout=5) as answer,
    ):
        chunks = answer.iter_raw()
        # the first piece arrives while the gateway still holds the second back
        assert next(chunks) == b"data: one\n\n"
        second_may_go.set()
        assert b"".join(chunks) == b"data: two\n\n"


def test_a_connection_dropped_at_reuse_is_replaced_for_idempotent_requests_only(
    key: SoftwareKey,
) -> None:
    def script(request: Seen) -> Answer:
        return Answer(drop=True) if request.nth == 2 else Answer(body=b"ok")

    with scripted_gateway(script) as gateway, running(gateway.url, key) as endpoint:
        seen = gateway.seen
        assert httpx.get(endpoint.base_url + "/a").text == "ok"
        # the kept-alive connection breaks as the GET arrives: sent again on a new one
        retried = httpx.get(endpoint.base_url + "/b")
        assert retried.text == "ok"
        assert [(s.connection, s.target) for s in seen] == [(1, "/a"), (1, "/b"), (2, "/b")]
        assert seen[1].headers["dpop"] != seen[2].headers["dpop"]  # a new proof for the retry
        # a POST may have been acted on: never sent twice, the tool gets a 502 and decides
        refused = httpx.post(endpoint.base_url + "/c", content=b"{}")
        assert refused.status_code == 502
        assert "closed the connection without answering" in refused.json()["error"]["message"]
        assert [s.target for s in seen].count("/c") == 1


def test_a_connection_the_gateway_closed_while_idle_is_not_reused(key: SoftwareKey) -> None:
    with (
        scripted_gateway(lambda _seen: Answer(body=b"ok", close_after=True)) as gateway,
        running(gateway.url, key) as endpoint,
    ):
        for _ in range(3):
            assert httpx.post(endpoint.base_url + "/v1/messages", content=b"{}").text == "ok"
            time.sleep(0.1)  # the gateway's close reaches the idle connection
    assert gateway.connections == 3


def test_an_untrusted_gateway_certificate_is_a_one_line_502_naming_ca_file(
    key: SoftwareKey, private_ca: PrivateCa
) -> None:
    tls = (private_ca.server_cert, private_ca.server_key)
    with paced_sse(events=1, interval_s=0, tls=tls) as stub:
        with running(stub.url, key, tls=ssl_context(None)) as endpoint:
            untrusted = httpx.get(endpoint.base_url + "/v1/models")
        with running(stub.url, key, tls=ssl_context(str(private_ca.ca_cert))) as endpoint:
            trusted = httpx.get(endpoint.base_url + "/v1/models")
    message = untrusted.json()["error"]["message"]
    assert untrusted.status_code == 502
    assert "\n" not in message
    assert message.startswith(f"envattest proxy: the TLS certificate of {stub.url} is not trusted")
    assert message.endswith("pass --ca-file CA.pem")
    assert len(stub.requests) == 1  # only the trusted attempt reached the gateway
    assert trusted.status_code == 200
    assert trusted.content == event_bytes(0)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        dst.close()


def _splice(client: socket.socket, target: socket.socket) -> None:
    threading.Thread(target=_pipe, args=(target, client), daemon=True).start()
    _pipe(client, target)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += sock.recv(size - len(data))
    return data


def _http_tunnel(client: socket.socket, log: list[bytes], refuse: bool) -> None:
    head = b""
    while b"\r\n\r\n" not in head:
        head += client.recv(4096)
    log.append(head.split(b"\r\n", 1)[0])
    if refuse:
        client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
        client.close()
        return
    host, _, port = head.split(b" ")[1].rpartition(b":")
    target = socket.create_connection((host.decode(), int(port)))
    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    _splice(client, target)


def _socks5_tunnel(client: socket.socket, log: list[bytes], _refuse: bool) -> None:
    _, count = _recv_exactly(client, 2)
    methods = _recv_exactly(client, count)
    if 2 in methods:  # username and password (RFC 1929)
        client.sendall(b"\x05\x02")
        _, size = _recv_exactly(client, 2)
        user = _recv_exactly(client, size)
        password = _recv_exactly(client, _recv_exactly(client, 1)[0])
        log.append(b"login " + user + b":" + password)
        client.sendall(b"\x01\x00")
    else:
        client.sendall(b"\x05\x00")
    _, _, _, kind = _recv_exactly(client, 4)
    if kind == 3:
        host = _recv_exactly(client, _recv_exactly(client, 1)[0]).decode()
    else:
        host = socket.inet_ntoa(_recv_exactly(client, 4))
    port = int.from_bytes(_recv_exactly(client, 2), "big")
    log.append(f"connect {host}:{port}".encode())
    target = socket.create_connection((host, port))
    client.sendall(b"\x05\x00\x00\x01" + bytes(4) + bytes(2))
    _splice(client, target)


@contextmanager
def outbound_proxy(kind: str, *, refuse: bool = False) -> Iterator[tuple[str, list[bytes]]]:
    """An ``http`` proxy that only tunnels (``CONNECT``) or a ``socks5`` one; records what each
    client asked for."""
    listener = socket.create_server(("127.0.0.1", 0))
    log: list[bytes] = []
    serve = _http_tunnel if kind == "http" else _socks5_tunnel

    def accept() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(client, log, refuse), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}", log
    finally:
        with suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()


def test_https_proxy_tunnels_to_the_gateway_and_no_proxy_exempts_it(
    key: SoftwareKey, private_ca: PrivateCa
) -> None:
    tls = (private_ca.server_cert, private_ca.server_key)
    trust = ssl_context(str(private_ca.ca_cert))
    with paced_sse(events=1, interval_s=0, tls=tls) as stub, outbound_proxy("http") as (at, log):
        authority = stub.url.removeprefix("https://").encode()
        env = {"https_proxy": f"http://{at}"}
        with running(stub.url, key, tls=trust, proxy_env=env) as endpoint:
            assert httpx.get(endpoint.base_url + "/v1/models").status_code == 200
        assert log == [b"CONNECT " + authority + b" HTTP/1.1"]
        exempted = {"HTTPS_PROXY": f"http://{at}", "NO_PROXY": "localhost,127.0.0.1"}
        with running(stub.url, key, tls=trust, proxy_env=exempted) as endpoint:
            assert httpx.get(endpoint.base_url + "/v1/models").status_code == 200
        assert len(log) == 1  # the exempted gateway was reached directly
    assert stub.requests[0].headers["authorization"] == f"DPoP {TOKEN}"


@pytest.mark.parametrize(
    ("scheme", "host", "expected"),
    [
        ("socks5", "127.0.0.1", [b"connect 127.0.0.1:{port}"]),
        ("socks5h", "localhost", [b"login alice:s3cret", b"connect localhost:{port}"]),
    ],
)
def test_a_socks5_proxy_reaches_the_gateway(
    key: SoftwareKey, private_ca: PrivateCa, scheme: str, host: str, expected: list[bytes]
) -> None:
    tls = (private_ca.server_cert, private_ca.server_key)
    trust = ssl_context(str(private_ca.ca_cert))
    login = "alice:s3cret@" if scheme == "socks5h" else ""
    with paced_sse(events=1, interval_s=0, tls=tls) as stub, outbound_proxy("socks5") as (at, log):
        port = int(stub.url.rsplit(":", 1)[1])
        env = {"ALL_PROXY": f"{scheme}://{login}{at}"}
        with running(f"https://{host}:{port}", key, tls=trust, proxy_env=env) as endpoint:
            assert httpx.get(endpoint.base_url + "/v1/models").status_code == 200
    assert log == [line.replace(b"{port}", str(port).encode()) for line in expected]
    assert stub.requests[0].headers["authorization"] == f"DPoP {TOKEN}"


def test_a_proxy_that_refuses_the_tunnel_is_a_502_naming_the_setting(key: SoftwareKey) -> None:
    with outbound_proxy("http", refuse=True) as (at, _log):
        env = {"HTTPS_PROXY": f"http://{at}"}
        with running("https://gateway.example", key, proxy_env=env) as endpoint:
            answer = httpx.get(endpoint.base_url + "/v1/models")
    message = answer.json()["error"]["message"]
    assert answer.status_code == 502
    assert f"the HTTP proxy {at} refused a tunnel to gateway.example:443" in message
    assert "check HTTPS_PROXY (and its credentials) or NO_PROXY" in message


def test_an_unsupported_proxy_setting_stops_the_start_with_what_to_do(key: SoftwareKey) -> None:
    proxy = BackgroundProxy(
        upstream=Upstream.parse("https://gateway.example"),
        obtain_for=lambda _e: lambda: IssuedToken(TOKEN, "DPoP", time.time(), time.time() + 600),
        proof=device_proof_factory(key),
        proxy_env={"ALL_PROXY": "socks4://127.0.0.1:1080"},
    )
    with pytest.raises(ProxySettingError, match=r"socks5h:// proxies.*NO_PROXY=gateway\.example"):
        proxy.start()


@pytest.mark.parametrize(
    ("no_proxy", "expected"),
    [
        ("*", True),
        ("gw.corp.example", True),
        (".corp.example", True),
        ("corp.example", True),
        ("gw.corp.example:443", True),
        ("gw.corp.example:8443", False),
        ("other.example, ,rp.example", False),
        ("", False),
    ],
)
def test_no_proxy_names_hosts_parent_domains_and_ports(no_proxy: str, expected: bool) -> None:
    assert exempt(no_proxy, Origin("https", "gw.corp.example", 443)) is expected


def test_only_https_gateways_go_through_the_proxy_named_for_https() -> None:
    env = {"HTTPS_PROXY": "proxy.corp:3128", "HTTP_PROXY": "http://other:1"}
    via = gateway_proxy(env, Origin("https", "gw.example", 443))
    assert via is not None
    assert via.label == "proxy.corp:3128"
    assert gateway_proxy(env, Origin("http", "127.0.0.1", 8080)) is None
    with_credentials = gateway_proxy(
        {"https_proxy": "http://u%40x:p@proxy:8080"}, Origin("https", "gw.example", 443)
    )
    assert with_credentials is not None
    assert with_credentials.authorization == b"Basic dUB4OnA="
