"""Load generation for the verifier benchmarks: a server process, enrolled agents, and
challenge -> attest cycles driven from separate load processes.

The load generator runs in its own processes (asyncio + ``httpx.AsyncClient`` with a pooled
connection per concurrent agent), so its CPU is measured apart from the server's; both share
the same cores, which every report says.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from attest.b64 import b64url_decode  # noqa: E402
from tests.servers import clean_env  # noqa: E402

EVIDENCE = {"Content-Type": "application/eat+jwt"}


@dataclass
class BenchServer:
    """A verifier started through ``bench._serve`` (any number of uvicorn workers)."""

    data_dir: Path
    port: int
    workers: int = 1
    http: str = "auto"
    loop: str = "auto"
    patches: str = ""
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir.parent / f"bench-server-{self.port}.log"

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BenchServer:
        """Start and wait for /healthz."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "bench._serve",
                    "--data-dir", str(self.data_dir), "--port", str(self.port),
                    "--workers", str(self.workers), "--http", self.http, "--loop", self.loop,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=clean_env(ENVATTEST_BENCH_PATCHES=self.patches),
                cwd=REPO,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"verifier exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"verifier did not start: {self.log_path.read_text()}")

    def processes(self) -> list[psutil.Process]:
        """The server process and its workers."""
        if self.process is None:
            return []
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]

    def cpu_seconds(self) -> float:
        """User + system CPU of the server and its live workers so far."""
        total = 0.0
        for proc in self.processes():
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def stop(self) -> None:
        """Terminate (SIGTERM, then SIGKILL) and wait."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def disable_rate_limits(data_dir: Path) -> None:
    """All load comes from 127.0.0.1 and a few devices, so the per-IP and per-device limits
    (right for production) would answer 429 within a second: turn them off for benchmarks."""
    config = data_dir / "server.toml"
    text = config.read_text()
    for name in ("rate_limit_per_minute", "device_rate_limit_per_minute"):
        if name not in text:
            text += f"{name} = 0\n"
    config.write_text(text)


@dataclass(frozen=True)
class Agent:
    """An enrolled simulated agent: its device id and the PEM of its software key."""

    device_id: str
    key_path: str


def enroll_agents(base_url: str, token: str, count: int, key_dir: Path) -> list[Agent]:
    """Create ``count`` software keys and enroll each with one multi-use token."""
    from attest.keys.software import SoftwareKey

    key_dir.mkdir(parents=True, exist_ok=True)

    def enroll_one(index: int) -> Agent:
        path = key_dir / f"agent-{index}.pem"
        key = SoftwareKey.create(path)
        with httpx.Client(base_url=base_url, timeout=30) as client:
            nonce = client.post("/v1/enroll/challenge", json={"enrollment_token": token})
            nonce.raise_for_status()
            challenge = nonce.json()["nonce"]
            answer = client.post(
                "/v1/enroll",
                json={
                    "enrollment_token": token,
                    "public_jwk": key.public_jwk(),
                    "key_attestation": key.attestation(b64url_decode(challenge)),
                    "nonce": challenge,
                },
            )
        answer.raise_for_status()
        return Agent(answer.json()["device_id"], str(path))

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(enroll_one, range(count)))


@dataclass(frozen=True)
class LoadSpec:
    """What one load process runs."""

    base_url: str
    agents: tuple[Agent, ...]
    manifest_raw: bytes
    concurrency: int
    start_at: float
    stop_at: float
    max_cycles: int
    keep_tokens: bool = False


@dataclass
class WorkerResult:
    """What one load process measured."""

    latencies_ms: list[float]
    errors: int
    error_samples: list[str]
    cpu_s: float
    tokens: list[str]


async def _drive(spec: LoadSpec) -> WorkerResult:
    from attest.evidence import ConsentClaim, new_claims, sign_evidence
    from attest.keys.software import SoftwareKey
    from attest.manifest import parse_manifest

    manifest = parse_manifest(spec.manifest_raw)
    signals: dict[str, object] = {str(r.field.id): r.field.example for r in manifest.fields}
    fields = tuple(sorted(manifest.field_ids))
    keys = {a.device_id: SoftwareKey.load(Path(a.key_path)) for a in spec.agents}
    result = WorkerResult([], 0, [], 0.0, [])
    budget = [spec.max_cycles]
    limits = httpx.Limits(
        max_connections=spec.concurrency, max_keepalive_connections=spec.concurrency
    )

    async def one_agent(slot: int, client: httpx.AsyncClient) -> None:
        mine = spec.agents[slot :: spec.concurrency] or spec.agents[slot % len(spec.agents) :][:1]
        turn = 0
        while time.time() < spec.stop_at and budget[0] > 0:
            budget[0] -= 1
            agent = mine[turn % len(mine)]
            turn += 1
            started = time.perf_counter()
            try:
                answer = await client.post("/v1/challenge", json={"device_id": agent.device_id})
                answer.raise_for_status()
                now = int(time.time())
                claims = new_claims(
                    nonce=answer.json()["nonce"],
                    device_id=agent.device_id,
                    consent=ConsentClaim(manifest.sha256, now, fields),  # type: ignore[arg-type]
                    signals=signals,
                    now=now,
                )
                evidence = sign_evidence(claims, keys[agent.device_id].sign)
                answer = await client.post("/v1/attest", content=evidence, headers=EVIDENCE)
                token = answer.json().get("access_token") if answer.status_code == 200 else None
                if not token:
                    raise RuntimeError(f"attest {answer.status_code}: {answer.text[:200]}")
            except Exception as exc:  # every failure is counted, a few are shown
                result.errors += 1
                if len(result.error_samples) < 5:
                    result.error_samples.append(f"{type(exc).__name__}: {exc}"[:300])
                continue
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            if spec.keep_tokens:
                result.tokens.append(token)

    async with httpx.AsyncClient(base_url=spec.base_url, limits=limits, timeout=30) as client:
        await asyncio.sleep(max(0.0, spec.start_at - time.time()))
        cpu0 = time.process_time()
        await asyncio.gather(*(one_agent(i, client) for i in range(spec.concurrency)))
        result.cpu_s = time.process_time() - cpu0
    return result


def _load_process(spec: LoadSpec, out: Any) -> None:
    out.put(asyncio.run(_drive(spec)))


@dataclass(frozen=True)
class LoadResult:
    """Figures of one load run."""

    cycles: int
    wall_s: float
    errors: int
    error_samples: list[str]
    latencies_ms: list[float]
    client_cpu_s: float
    server_cpu_s: float
    tokens: list[str]

    @property
    def cycles_per_s(self) -> float:
        """Successful cycles per second of wall time."""
        return self.cycles / self.wall_s if self.wall_s else 0.0

    def percentile(self, q: float) -> float:
        """Latency percentile in ms (0 if nothing succeeded)."""
        return percentile(self.latencies_ms, q)

    def figures(self) -> dict[str, Any]:
        """The JSON-ready summary."""
        cores = os.cpu_count() or 1
        return {
            "cycles": self.cycles,
            "wall_s": round(self.wall_s, 2),
            "cycles_per_s": round(self.cycles_per_s, 1),
            "p50_ms": round(self.percentile(50), 2),
            "p95_ms": round(self.percentile(95), 2),
            "p99_ms": round(self.percentile(99), 2),
            "errors": self.errors,
            "error_samples": self.error_samples,
            "server_cpu_ms_per_cycle": round(1000 * self.server_cpu_s / self.cycles, 3)
            if self.cycles
            else None,
            "client_cpu_ms_per_cycle": round(1000 * self.client_cpu_s / self.cycles, 3)
            if self.cycles
            else None,
            "server_cpu_share": round(self.server_cpu_s / (self.wall_s * cores), 3),
            "client_cpu_share": round(self.client_cpu_s / (self.wall_s * cores), 3),
        }


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def run_load(
    server: BenchServer,
    agents: Sequence[Agent],
    *,
    concurrency: int,
    seconds: float,
    load_processes: int = 1,
    max_cycles: int = 1_000_000,
    keep_tokens: bool = False,
) -> LoadResult:
    """Drive ``concurrency`` agents for ``seconds`` from ``load_processes`` processes."""
    manifest_raw = httpx.get(f"{server.url}/v1/manifest").content
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 1.5  # let every load process import and connect first
    stop_at = start_at + seconds
    procs = []
    for i in range(load_processes):
        share = concurrency // load_processes + (1 if i < concurrency % load_processes else 0)
        spec = LoadSpec(
            base_url=server.url,
            agents=tuple(agents[i::load_processes]),
            manifest_raw=manifest_raw,
            concurrency=share,
            start_at=start_at,
            stop_at=stop_at,
            max_cycles=max_cycles // load_processes,
            keep_tokens=keep_tokens,
        )
        proc = ctx.Process(target=_load_process, args=(spec, queue))
        proc.start()
        procs.append(proc)
    time.sleep(max(0.0, start_at - time.time()))
    server_cpu0 = server.cpu_seconds()
    results: list[WorkerResult] = [queue.get(timeout=seconds + 120) for _ in procs]
    wall = time.time() - start_at
    server_cpu = server.cpu_seconds() - server_cpu0
    for proc in procs:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
    latencies = [x for r in results for x in r.latencies_ms]
    return LoadResult(
        cycles=len(latencies),
        wall_s=wall,
        errors=sum(r.errors for r in results),
        error_samples=[s for r in results for s in r.error_samples][:5],
        latencies_ms=latencies,
        client_cpu_s=sum(r.cpu_s for r in results),
        server_cpu_s=server_cpu,
        tokens=[t for r in results for t in r.tokens],
    )


def crypto_pairs_per_s(seconds: float = 1.0) -> float:
    """How many (ES256 verify + ES256 sign) pairs one core does in-process: the cryptographic
    floor of one attestation on the server (verify the evidence, sign the token)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    device = ec.generate_private_key(ec.SECP256R1())
    server_key = ec.generate_private_key(ec.SECP256R1())
    evidence_input = b"e" * 900  # about the size of a signing input with default signals
    signature = device.sign(evidence_input, ec.ECDSA(hashes.SHA256()))
    public = device.public_key()
    token_input = b"t" * 400
    pairs = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        for _ in range(50):
            public.verify(signature, evidence_input, ec.ECDSA(hashes.SHA256()))
            server_key.sign(token_input, ec.ECDSA(hashes.SHA256()))
        pairs += 50
    return pairs / (time.perf_counter() - started)


def median(values: Sequence[float]) -> float:
    """Median, 0 for nothing."""
    return statistics.median(values) if values else 0.0


def last_line_json(doc: dict[str, Any]) -> None:
    """Print the one machine-readable result, as the last line."""
    print(json.dumps(doc, sort_keys=True))


def inprocess_pipeline(data_dir: Path, seconds: float) -> dict[str, float]:
    """Challenge -> attest through ``Verifier`` directly (no HTTP), one thread: what the
    pipeline and its three commits cost without the web stack. Uses its own enrolled key."""
    from attest.evidence import ConsentClaim, new_claims, sign_evidence
    from attest.keys.software import SoftwareKey
    from server.config import load_config
    from server.enrollment import EnrolledDevice
    from server.runtime import build_runtime
    from tests.servers import run_server_cli

    runtime = build_runtime(load_config(data_dir))
    token = run_server_cli(
        ["enroll-token", "create", "--data-dir", str(data_dir), "--uses", "1"]
    ).strip()
    key = SoftwareKey.create(data_dir.parent / "inprocess-key.pem")
    challenge = runtime.enrollment.challenge(token).nonce
    enrolled = runtime.enrollment.enroll(
        enrollment_token=token,
        jwk=key.public_jwk(),
        statement=key.attestation(b64url_decode(challenge)),
        nonce=challenge,
    )
    assert isinstance(enrolled, EnrolledDevice)
    device_id = enrolled.device_id
    manifest = runtime.manifest
    fields = tuple(sorted(manifest.field_ids))
    signals: dict[str, object] = {str(r.field.id): r.field.example for r in manifest.fields}
    sign_s = 0.0

    def cycle() -> None:
        nonlocal sign_s
        nonce = runtime.verifier.challenge(device_id).nonce
        now = int(time.time())
        t0 = time.process_time()
        evidence = sign_evidence(
            new_claims(
                nonce=nonce,
                device_id=device_id,
                consent=ConsentClaim(manifest.sha256, now, fields),  # type: ignore[arg-type]
                signals=signals,
                now=now,
            ),
            key.sign,
        )
        sign_s += time.process_time() - t0
        runtime.verifier.attest(evidence.encode())

    for _ in range(10):
        cycle()
    sign_s, cycles = 0.0, 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall0 < seconds:
        cycle()
        cycles += 1
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0 - sign_s
    runtime.store.engine.dispose()
    return {
        "cycles_per_s": round(cycles / wall, 1),
        "wall_ms_per_cycle": round(1000 * wall / cycles, 3),
        "server_cpu_ms_per_cycle": round(1000 * cpu / cycles, 3),
    }
