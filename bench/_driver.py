"""A load process: ``concurrency`` simulated clients, each on its own keep-alive connection,
running one of three loops until a deadline or a count:

- ``cycle``: POST /v1/challenge, sign evidence (ES256), POST /v1/attest;
- ``authz``: GET /v1/authz with a bearer token;
- ``introspect``: POST /v1/introspect with a gateway credential.

Evidence is built from a per-agent template (the claims ``attest.evidence.new_claims``
makes, with the nonce and time replaced), so the client's CPU per cycle stays a small part
of what is measured; the process reports its own CPU for the measured window.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench._http import Connection, encode_request

Mode = str  # "cycle" | "authz" | "introspect"


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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _Evidence:
    """Fast evidence for one agent: header fixed, claims from the template."""

    def __init__(self, agent: AgentSpec) -> None:
        from pathlib import Path

        from attest.keys.software import SoftwareKey

        self._sign = SoftwareKey.load(Path(agent.key_path)).sign
        header = {"alg": "ES256", "typ": "eat+jwt", "kid": agent.device_id}
        self._header = _b64(json.dumps(header, separators=(",", ":")).encode())
        self._claims = dict(agent.claims)

    def make(self, nonce: str, now: int) -> bytes:
        claims = self._claims
        claims["eat_nonce"], claims["iat"] = nonce, now
        payload = _b64(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
        signing_input = f"{self._header}.{payload}".encode()
        return signing_input + b"." + _b64(self._sign(signing_input)).encode()


async def drive(spec: DriveSpec, ready: Callable[[], float]) -> DriveResult:
    """Connect the clients, call ``ready`` (which returns the common start time), run until
    ``seconds`` after it; measure latency per operation and this process's CPU."""
    host = f"{spec.host}:{spec.port}"
    result = DriveResult()
    budget = [spec.max_ops]
    evidence = {a.device_id: _Evidence(a) for a in spec.agents} if spec.mode == "cycle" else {}
    json_type = {"Content-Type": "application/json"}
    eat_type = {"Content-Type": "application/eat+jwt"}

    def fail(why: str) -> None:
        result.errors += 1
        if len(result.error_samples) < 5:
            result.error_samples.append(why[:300])

    async def cycle(conn: Connection, agent: AgentSpec) -> None:
        body = json.dumps({"device_id": agent.device_id}).encode()
        status, answer = await conn.request(
            encode_request("POST", "/v1/challenge", host=host, headers=json_type, body=body)
        )
        if status != 200:
            return fail(f"challenge {status}: {answer[:200]!r}")
        nonce = json.loads(answer)["nonce"]
        raw = evidence[agent.device_id].make(nonce, int(time.time()))
        status, answer = await conn.request(
            encode_request("POST", "/v1/attest", host=host, headers=eat_type, body=raw)
        )
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

    async def check(conn: Connection, raw: bytes, ok: int) -> None:
        status, answer = await conn.request(raw)
        if status != ok:
            fail(f"{spec.mode} {status}: {answer[:200]!r}")
        elif spec.mode == "introspect" and b'"active":true' not in answer.replace(b" ", b""):
            fail(f"introspect inactive: {answer[:200]!r}")

    connections = [await Connection.open(spec.host, spec.port) for _ in range(spec.concurrency)]
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
                    else:
                        await check(conn, introspect[turn % len(introspect)], 200)
                except (OSError, ValueError, KeyError, asyncio.IncompleteReadError) as exc:
                    fail(f"{type(exc).__name__}: {exc}")
                    conn.close()
                    conn = await Connection.open(spec.host, spec.port)
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
