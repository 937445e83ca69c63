"""A load process: ``concurrency`` simulated clients, each on its own keep-alive connection,
running one of four loops until a deadline or a count:

- ``cycle``: POST /v1/challenge, sign evidence (ES256), POST /v1/attest;
- ``authz``: GET /v1/authz with a bearer token;
- ``dpop``: GET /v1/authz with a DPoP-bound token and a fresh proof for each request, as a
  gateway forwards it (``X-Original-Method``, ``X-Original-URI``); the proofs are signed
  before the measured window, so their signatures are not in the client's CPU;
- ``introspect``: POST /v1/introspect with a gateway credential.

Evidence is built from a per-agent template: the claims ``attest.evidence.new_claims``
makes, serialized once, with the nonce and time spliced into the bytes; requests are
pre-encoded bytes; each connection is an ``asyncio.Protocol`` that parses keep-alive
responses by hand (status line and Content-Length). So the client's CPU per cycle, which the
process reports for the measured window, is mostly the ES256 signature it cannot avoid.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from bench._http import HttpError, encode_request

Mode = str  # "cycle" | "authz" | "dpop" | "introspect"
DPOP_EXTERNAL_URL = "https://gateway.bench"  # the gateway the proofs name (``htu``)
DPOP_PATH = "/v1/messages"
DPOP_PROOFS_PER_S = 4000  # proofs signed ahead, per second of load and load process


@dataclass(frozen=True)
class AgentSpec:
    """An enrolled agent: device id, its key file, and its evidence claims template."""

    device_id: str
    key_path: str
    claims: dict[str, Any]


@dataclass(frozen=True)
class DriveSpec:
    """What one load process runs."""

    host: str
    port: int
    mode: Mode
    agents: tuple[AgentSpec, ...]
    tokens: tuple[str, ...]
    gateway_credential: str
    concurrency: int
    seconds: float
    max_ops: int
    keep_tokens: bool = False


@dataclass
class DriveResult:
    """What one load process measured."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    cpu_s: float = 0.0
    ended_at: float = 0.0
    tokens: list[str] = field(default_factory=list)


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


_NONCE_MARK, _IAT_MARK = "\x00nonce\x00", 1_234_567_890_123_456


class _Evidence:
    """Fast evidence for one agent: header fixed, claims serialized once, the nonce and the
    time spliced into the bytes per cycle."""

    def __init__(self, agent: AgentSpec, host: str) -> None:
        from pathlib import Path

        from attest.keys.software import SoftwareKey

        self._sign = SoftwareKey.load(Path(agent.key_path)).sign
        header = {"alg": "ES256", "typ": "eat+jwt", "kid": agent.device_id}
        self._header = _b64(json.dumps(header, separators=(",", ":")).encode()) + b"."
        claims = dict(agent.claims, eat_nonce=_NONCE_MARK, iat=_IAT_MARK)
        text = json.dumps(claims, separators=(",", ":"), ensure_ascii=False)
        nonce_mark, iat_mark = json.dumps(_NONCE_MARK), str(_IAT_MARK)
        if text.count(nonce_mark) != 1 or text.count(iat_mark) != 1:
            raise ValueError("the claims template has no single eat_nonce and iat to fill in")
        self._nonce_first = text.index(nonce_mark) < text.index(iat_mark)
        first, second = (nonce_mark, iat_mark) if self._nonce_first else (iat_mark, nonce_mark)
        head, _, rest = text.partition(first)
        middle, _, tail = rest.partition(second)
        self._parts = (head, middle, tail)
        self._attest_head = (
            f"POST /v1/attest HTTP/1.1\r\nHost: {host}\r\n"
            "Content-Type: application/eat+jwt\r\nContent-Length: "
        ).encode()
        body = json.dumps({"device_id": agent.device_id}).encode()
        self.challenge = encode_request(
            "POST", "/v1/challenge", host=host,
            headers={"Content-Type": "application/json"}, body=body,
        )  # fmt: skip

    def attest_request(self, nonce: str, now: int) -> bytes:
        """The POST /v1/attest request carrying fresh evidence."""
        head, middle, tail = self._parts
        quoted, iat = f'"{nonce}"', str(now)
        payload = (
            head + quoted + middle + iat + tail
            if self._nonce_first
            else head + iat + middle + quoted + tail
        ).encode()
        signing_input = self._header + _b64(payload)
        body = signing_input + b"." + _b64(self._sign(signing_input))
        return self._attest_head + str(len(body)).encode() + b"\r\n\r\n" + body


def _subject(token: str) -> str:
    """The ``sub`` claim of a token the client holds (its own; no signature to check)."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sub"])


def dpop_requests(spec: DriveSpec, host: str) -> list[bytes]:
    """One forward-auth request per proof, each proof fresh and signed by its token's key."""
    from pathlib import Path

    from attest.dpop import create_proof
    from attest.keys.software import SoftwareKey

    keys = {a.device_id: SoftwareKey.load(Path(a.key_path)) for a in spec.agents}
    jwks = {device: key.public_jwk() for device, key in keys.items()}
    owners = [_subject(token) for token in spec.tokens]
    count = min(spec.max_ops, int(spec.seconds * DPOP_PROOFS_PER_S))
    requests = []
    for i in range(count if spec.tokens else 0):
        token, owner = spec.tokens[i % len(spec.tokens)], owners[i % len(spec.tokens)]
        proof = create_proof(
            signer=keys[owner].sign, public_jwk=jwks[owner], htm="POST",
            htu=DPOP_EXTERNAL_URL + DPOP_PATH, access_token=token,
        )  # fmt: skip
        headers = {"Authorization": f"DPoP {token}", "DPoP": proof,
                   "X-Original-Method": "POST", "X-Original-URI": DPOP_PATH}  # fmt: skip
        requests.append(encode_request("GET", "/v1/authz", host=host, headers=headers))
    return requests


class _Wire(asyncio.Protocol):
    """One keep-alive connection: a request is written whole, its response read by
    Content-Length from the bytes as they arrive (no stream reader, no header parser)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._transport: asyncio.Transport | None = None
        self._lost: Exception | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> _Wire:
        loop = asyncio.get_running_loop()
        _, wire = await loop.create_connection(cls, host, port)
        return wire

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionResetError("the server closed the connection")
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(self._lost)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        try:
            answer = self._response()
        except (HttpError, ValueError) as exc:
            waiter.set_exception(exc)
            return
        if answer is not None:
            waiter.set_result(answer)

    def _response(self) -> tuple[int, bytes] | None:
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        at = buffer.find(b"\r\ncontent-length:", 0, end)
        if at < 0:
            at = bytes(buffer[:end]).lower().find(b"\r\ncontent-length:")
            if at < 0:
                status = int(buffer[9:12])
                if status in (204, 304):  # no body and no Content-Length (RFC 9110 8.6)
                    del buffer[: end + 4]
                    return status, b""
                raise HttpError("a response without Content-Length (chunked?)")
        line_end = buffer.find(b"\r\n", at + 2)
        length = int(buffer[at + 17 : line_end if 0 <= line_end < end else end])
        total = end + 4 + length
        if len(buffer) < total:
            return None
        status = int(buffer[9:12])
        body = bytes(buffer[end + 4 : total])
        del buffer[:total]
        return status, body

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send one request, return (status, body)."""
        if self._lost is not None or self._transport is None:
            raise ConnectionResetError("the connection is closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(raw)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _nonce(answer: bytes) -> str:
    """The nonce of a challenge answer, without a JSON decoder: base64url, no escapes."""
    at = answer.index(b'"nonce":') + 8
    start = answer.index(b'"', at) + 1
    return answer[start : answer.index(b'"', start)].decode()


async def drive(spec: DriveSpec, ready: Callable[[], float]) -> DriveResult:
    """Connect the clients, call ``ready`` (which returns the common start time), run until
    ``seconds`` after it; measure latency per operation and this process's CPU."""
    host = f"{spec.host}:{spec.port}"
    result = DriveResult()
    budget = [spec.max_ops]
    evidence = (
        {a.device_id: _Evidence(a, host) for a in spec.agents} if spec.mode == "cycle" else {}
    )

    def fail(why: str) -> None:
        result.errors += 1
        if len(result.error_samples) < 5:
            result.error_samples.append(why[:300])

    async def cycle(conn: _Wire, agent: AgentSpec) -> None:
        made = evidence[agent.device_id]
        status, answer = await conn.request(made.challenge)
        if status != 200:
            return fail(f"challenge {status}: {answer[:200]!r}")
        status, answer = await conn.request(made.attest_request(_nonce(answer), int(time.time())))
        if status != 200:
            return fail(f"attest {status}: {answer[:200]!r}")
        if spec.keep_tokens:
            result.tokens.append(json.loads(answer)["access_token"])
        return None

    authz = [
        encode_request("GET", "/v1/authz", host=host, headers={"Authorization": f"Bearer {t}"})
        for t in spec.tokens
    ]
    introspect = [
        encode_request(
            "POST",
            "/v1/introspect",
            host=host,
            headers={
                "Authorization": f"Bearer {spec.gateway_credential}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
            body=f"token={t}".encode(),
        )
        for t in spec.tokens
    ]

    async def check(conn: _Wire, raw: bytes, ok: int) -> None:
        status, answer = await conn.request(raw)
        if status != ok:
            fail(f"{spec.mode} {status}: {answer[:200]!r}")
        elif spec.mode == "introspect" and b'"active":true' not in answer.replace(b" ", b""):
            fail(f"introspect inactive: {answer[:200]!r}")

    dpop = dpop_requests(spec, host) if spec.mode == "dpop" else []
    if spec.mode == "dpop":
        budget[0] = min(budget[0], len(dpop))  # each proof is sent once
    connections = [await _Wire.open(spec.host, spec.port) for _ in range(spec.concurrency)]
    start_at = await asyncio.get_running_loop().run_in_executor(None, ready)
    stop_at = start_at + spec.seconds

    async def client(slot: int) -> None:
        conn = connections[slot]
        await asyncio.sleep(max(0.0, start_at - time.time()))
        turn = slot
        try:
            while time.time() < stop_at and budget[0] > 0:
                budget[0] -= 1
                turn += spec.concurrency
                started = time.perf_counter()
                errors = result.errors
                try:
                    if spec.mode == "cycle":
                        await cycle(conn, spec.agents[turn % len(spec.agents)])
                    elif spec.mode == "authz":
                        await check(conn, authz[turn % len(authz)], 204)
                    elif spec.mode == "dpop":
                        await check(conn, dpop[budget[0]], 204)  # the budget counts down
                    else:
                        await check(conn, introspect[turn % len(introspect)], 200)
                except (OSError, ValueError, KeyError, HttpError) as exc:
                    fail(f"{type(exc).__name__}: {exc}")
                    conn.close()
                    conn = await _Wire.open(spec.host, spec.port)
                    continue
                if result.errors == errors:
                    result.latencies_ms.append((time.perf_counter() - started) * 1000)
        finally:
            conn.close()

    tasks = [asyncio.ensure_future(client(i)) for i in range(spec.concurrency)]
    await asyncio.sleep(max(0.0, start_at - time.time()))
    cpu0 = time.process_time()
    await asyncio.gather(*tasks)
    result.cpu_s = time.process_time() - cpu0
    result.ended_at = time.time()
    return result


def run_process(spec: DriveSpec, out: Any, start: Any) -> None:
    """Entry point of a load process (multiprocessing target): ``out`` gets "ready" once
    connected, then the result; ``start`` delivers the common start time."""

    def ready() -> float:
        out.put("ready")
        return float(start.get())

    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        runner = asyncio.run
    out.put(runner(drive(spec, ready)))
