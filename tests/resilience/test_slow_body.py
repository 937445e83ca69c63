"""Slow bodies cannot hold a connection: a body not complete within ``body_timeout_s`` of the
request head is answered 408 and the connection closed (raw sockets against a real server)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.servers import VerifierProcess, init_verifier

TIMEOUT_S = 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VerifierProcess]:
    handle = init_verifier(tmp_path_factory.mktemp("slow") / "v")
    with (handle.data_dir / "server.toml").open("a") as toml:
        toml.write(f"body_timeout_s = {TIMEOUT_S}\nrate_limit_per_minute = 0\n")
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()


def _dribble(server: VerifierProcess, head: bytes, pieces: list[bytes]) -> tuple[bytes, float]:
    """Send ``head``, then one piece every 0.2 s until the server answers; return everything
    the server sent until it closed the connection, and how long that took."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        sock.settimeout(0.2)
        received = b""
        for piece in pieces:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                try:
                    sock.sendall(piece)
                except OSError:  # closed under us: the answer is in the buffer
                    break
                continue
            received += chunk
            break
        sock.settimeout(10)
        try:
            while chunk := sock.recv(65536):  # until the server closes (b"")
                received += chunk
        except ConnectionResetError:
            # a piece sent just as the server closed makes its kernel answer with a reset
            # instead of a clean close; the answer read before it is checked by the caller
            pass
    return received, time.monotonic() - start


def _problem(answer: bytes) -> tuple[str, dict[str, str], dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status_line, headers, json.loads(body)


@pytest.mark.parametrize("chunked", [False, True])
def test_a_dribbled_body_gets_408_and_the_connection_closes(
    server: VerifierProcess, chunked: bool
) -> None:
    framing = b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: 100\r\n"
    head = (
        b"POST /v1/challenge HTTP/1.1\r\nHost: verifier\r\nContent-Type: application/json\r\n"
        + framing
        + b"\r\n"
    )
    pieces = [b"1\r\n{\r\n" if chunked else b"{"] + [b"1\r\n \r\n" if chunked else b" "] * 50
    answer, elapsed = _dribble(server, head, pieces)
    status_line, headers, problem = _problem(answer)
    assert status_line == "HTTP/1.1 408 Request Timeout"
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/problem+json"
    assert problem["type"] == "urn:envattest:problem:request-timeout"
    assert f"within {TIMEOUT_S} s" in str(problem["detail"])
    assert TIMEOUT_S <= elapsed < TIMEOUT_S + 3  # answered at the deadline, not at the end


def test_a_body_that_never_starts_gets_408(server: VerifierProcess) -> None:
    head = (
        b"POST /v1/attest HTTP/1.1\r\nHost: verifier\r\nContent-Type: application/eat+jwt\r\n"
        b"Content-Length: 500\r\n\r\n"
    )
    answer, elapsed = _dribble(server, head, [b""] * 50)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert elapsed < TIMEOUT_S + 3


def test_slow_bodies_are_counted_and_others_are_served_meanwhile(server: VerifierProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as stalled:
        stalled.sendall(b"POST /v1/challenge HTTP/1.1\r\nHost: v\r\nContent-Length: 50\r\n\r\n{")
        with httpx.Client(base_url=server.url) as http:
            start = time.monotonic()
            answer = http.post("/v1/challenge", json={"device_id": "unknown"})
            assert answer.status_code not in (408, 500)
            assert time.monotonic() - start < TIMEOUT_S  # not queued behind the stalled one
            assert stalled.recv(65536).startswith(b"HTTP/1.1 408 ")
            metrics = http.get("/metrics").text
    assert 'route="/v1/challenge",status="408"' in metrics


def test_a_body_just_within_the_deadline_is_served(server: VerifierProcess) -> None:
    body = json.dumps({"device_id": "x" * 20}).encode()
    head = (
        b"POST /v1/challenge HTTP/1.1\r\nHost: verifier\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    # three pieces, 0.2 s apart: well inside the deadline
    answer, _ = _dribble(server, head, [body[:5], body[5:10], body[10:]] + [b""] * 10)
    assert not answer.startswith(b"HTTP/1.1 408 ")
    assert answer.startswith(b"HTTP/1.1 4")  # the route's own answer for an unknown device


def test_a_client_that_leaves_mid_body_is_counted_as_gone_not_as_an_error(
    server: VerifierProcess,
) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/enroll HTTP/1.1\r\nHost: v\r\nContent-Length: 80\r\n\r\n{")
        time.sleep(0.2)
    time.sleep(0.3)
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'route="/v1/enroll",status="499"' in metrics
    assert 'route="/v1/enroll",status="500"' not in metrics
