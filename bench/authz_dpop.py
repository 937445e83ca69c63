"""Forward auth with DPoP against forward auth with a bearer token, in one run.

    .venv/bin/python bench/authz_dpop.py [--seconds 3] [--concurrency 16]

One verifier (SQLite, one process), one device, one token. The bearer phase sends
``Authorization: Bearer``; the DPoP phase sends ``Authorization: DPoP``, a fresh proof and the
gateway's ``X-Original-*`` headers, so it pays for the proof check and the replay-store write.
Proofs are signed before the measured window (the client's cost is not the verifier's). The
client is a minimal keep-alive HTTP/1.1 loop on asyncio. Reports requests/s, p50/p99, server
and client CPU per request for both, and the DPoP/bearer cost ratio; the last line is one JSON
object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attest.dpop import create_proof
from bench._driver import DPOP_EXTERNAL_URL, DPOP_PATH
from tests.devices import TestDevice
from tests.server.dpop_support import configure
from tests.servers import init_verifier

EXTERNAL, PATH = DPOP_EXTERNAL_URL, DPOP_PATH  # the gateway URL and path proofs name
TARGET_COST_RATIO = 1.5
MAX_PROOFS = 40_000


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))
    return status


async def _phase(
    port: int, requests: list[bytes], *, seconds: float, concurrency: int
) -> dict[str, Any]:
    latencies: list[float] = []
    failures = 0
    queue = iter(requests)
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                request = next(queue, None)
                if request is None:
                    return
                started = time.perf_counter()
                status = await _exchange(reader, writer, request)
                latencies.append(time.perf_counter() - started)
                failures += status != 204
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

    return {
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "failures": failures,
    }


def _request(headers: dict[str, str]) -> bytes:
    lines = ["GET /v1/authz HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _profile(pid: int, seconds: float, out: Path | None) -> subprocess.Popen[bytes] | None:
    """py-spy over the server (GIL-holding samples) during one phase, as collapsed stacks."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if out is None or not Path(spy).exists():
        return None
    return subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
         "--rate", "200", "--format", "raw", "--output", str(out), "--nonblocking", "--gil"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _measure(
    server: psutil.Process,
    port: int,
    requests: list[bytes],
    seconds: float,
    concurrency: int,
    profile: Path | None = None,
) -> dict[str, Any]:
    spy = _profile(server.pid, seconds, profile)
    cpu, client = server.cpu_times(), time.process_time()
    figures = asyncio.run(_phase(port, requests, seconds=seconds, concurrency=concurrency))
    if spy is not None:
        spy.wait(timeout=seconds + 30)
    used, client_used = server.cpu_times(), time.process_time()
    spent = (used.user - cpu.user) + (used.system - cpu.system)
    done = max(1, figures["requests"])
    figures["server_cpu_ms_per_request"] = round(spent * 1000 / done, 3)
    figures["client_cpu_ms_per_request"] = round((client_used - client) * 1000 / done, 3)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per phase (max 10)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--profile-dir", type=Path, default=None, help="py-spy stacks here")
    args = parser.parse_args()
    profiles: dict[str, Path | None] = {"bearer": None, "dpop": None}
    if args.profile_dir is not None:
        args.profile_dir.mkdir(parents=True, exist_ok=True)
        profiles = {name: args.profile_dir / f"authz-{name}.txt" for name in profiles}
    seconds = min(args.seconds, 10.0)
    with tempfile.TemporaryDirectory(prefix="envattest-bench-") as work:
        verifier = configure(
            init_verifier(Path(work) / "verifier"),
            binding="bearer",
            authz_external_url=EXTERNAL,
            rate_limit_per_minute=0,
            device_rate_limit_per_minute=0,
        ).start()
        try:
            assert verifier.process is not None
            server = psutil.Process(verifier.process.pid)
            device = TestDevice.enroll(verifier.url, verifier.enroll_token(), Path(work) / "k.pem")
            token = device.attest(device.evidence()).json()["access_token"]
            bearer = [_request({"Authorization": f"Bearer {token}"})] * MAX_PROOFS
            gateway = {"X-Original-Method": "POST", "X-Original-URI": PATH}
            count = min(MAX_PROOFS, int(seconds * 6000))
            signing = time.perf_counter()
            dpop = [
                _request(
                    {
                        "Authorization": f"DPoP {token}",
                        "DPoP": create_proof(
                            signer=device.key.sign,
                            public_jwk=device.key.public_jwk(),
                            htm="POST",
                            htu=EXTERNAL + PATH,
                            access_token=token,
                        ),
                        **gateway,
                    }
                )
                for _ in range(count)
            ]
            signing_ms = (time.perf_counter() - signing) * 1000 / count
            _measure(server, verifier.port, bearer, 0.5, args.concurrency)  # warm-up
            bearer_figures = _measure(
                server, verifier.port, bearer, seconds, args.concurrency, profiles["bearer"]
            )
            dpop_figures = _measure(
                server, verifier.port, dpop, seconds, args.concurrency, profiles["dpop"]
            )
        finally:
            verifier.stop()
    cost_ratio = round(
        dpop_figures["server_cpu_ms_per_request"]
        / max(1e-9, bearer_figures["server_cpu_ms_per_request"]),
        2,
    )
    result = {
        "bench": "authz_dpop",
        "seconds_per_phase": seconds,
        "concurrency": args.concurrency,
        "bearer": bearer_figures,
        "dpop": dpop_figures,
        "throughput_ratio_bearer_over_dpop": round(
            bearer_figures["requests_per_s"] / max(1, dpop_figures["requests_per_s"]), 2
        ),
        "server_cpu_ratio_dpop_over_bearer": cost_ratio,
        "target_cost_ratio": TARGET_COST_RATIO,
        "client_proof_signing_ms": round(signing_ms, 3),
    }
    for name in ("bearer", "dpop"):
        f = result[name]
        print(
            f"{name:>6}: {f['requests_per_s']:>6} req/s  p50 {f['p50_ms']} ms  p99 {f['p99_ms']} ms"
            f"  server CPU {f['server_cpu_ms_per_request']} ms/req"
            f"  client CPU {f['client_cpu_ms_per_request']} ms/req  failures {f['failures']}"
        )
    print(json.dumps(result, sort_keys=True))
    return 0 if dpop_figures["failures"] == 0 and bearer_figures["failures"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
