"""Benchmark plumbing: server processes (the verifier via ``envattest-server serve`` and the
reference in ``bench.reference``), enrolled agents, and load runs driven from separate
processes (``bench._driver``) so the client's CPU is measured apart from the servers'."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench._driver import AgentSpec, DriveResult, DriveSpec, run_process  # noqa: E402
from server.alerts.worker import PROJECTOR_NAME  # noqa: E402
from tests.servers import clean_env  # noqa: E402


@dataclass
class ServerProcess:
    """A server started from ``argv`` that answers ``GET /healthz`` on ``port``."""

    argv: list[str]
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=clean_env)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        """Start and wait for /healthz."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=REPO
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-2000:]}")

    def processes(self) -> list[psutil.Process]:
        """The server process and its workers."""
        if self.process is None:
            return []
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]

    def cpu_seconds(self, *, named: str | None = None) -> float:
        """User + system CPU of the server and its live workers so far; with ``named``, of
        the processes of that name only (``PROJECTOR_NAME``: the fleet projector)."""
        return tree_cpu_seconds(self.processes(), named=named)

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL; wait."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def tree_cpu_seconds(processes: Sequence[psutil.Process], *, named: str | None = None) -> float:
    """User + system CPU so far of ``processes`` (of those called ``named``); a process that
    is gone counts nothing."""
    total = 0.0
    for proc in processes:
        try:
            if named is not None and proc.name() != named:
                continue
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def postgres_processes(url: str) -> Callable[[], list[psutil.Process]]:
    """The PostgreSQL server listening on ``url``'s port, and its backends, as of each call."""
    port = f"-p {url.rsplit(':', 1)[1].split('/')[0]} "
    postmaster = next(
        p for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] in ("postgres", "postmaster")
        and port in " ".join(p.info["cmdline"] or [])
    )  # fmt: skip
    return lambda: [postmaster, *postmaster.children(recursive=True)]


def verifier_server(data_dir: Path, port: int, *, workers: int = 1) -> ServerProcess:
    """``envattest-server serve`` on ``data_dir`` with ``workers`` processes."""
    argv = [
        sys.executable, "-m", "server", "serve", "--data-dir", str(data_dir),
        "--port", str(port), "--log-level", "warning",
        *(["--workers", str(workers)] if workers > 1 else []),
    ]  # fmt: skip
    return ServerProcess(argv, port, data_dir.parent / f"verifier-{port}.log")


def reference_server(
    db: str, port: int, log_dir: Path, *, workers: int = 1, group_commit: bool = True
) -> ServerProcess:
    """``bench.reference`` on database ``db`` (SQLite path or PostgreSQL URL)."""
    argv = [
        sys.executable, "-m", "bench.reference", "--db", db, "--port", str(port),
        "--workers", str(workers), *([] if group_commit else ["--no-group-commit"]),
    ]  # fmt: skip
    return ServerProcess(argv, port, log_dir / f"reference-{port}.log")


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
    """An enrolled simulated agent."""

    device_id: str
    key_path: str
    public_jwk: dict[str, str]
    claims: dict[str, Any]

    def spec(self) -> AgentSpec:
        """What a load process needs."""
        return AgentSpec(self.device_id, self.key_path, self.claims)


def enroll_agents(base_url: str, token: str, count: int, key_dir: Path) -> list[Agent]:
    """Create ``count`` software keys and enroll each with one multi-use token."""
    from tests.devices import TestDevice

    key_dir.mkdir(parents=True, exist_ok=True)

    def enroll_one(index: int) -> Agent:
        path = key_dir / f"agent-{index}.pem"
        device = TestDevice.enroll(base_url, token, path)
        claims = device.claims("template").to_json()
        return Agent(device.device_id, str(path), device.key.public_jwk(), claims)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(enroll_one, range(count)))


@dataclass(frozen=True)
class LoadResult:
    """Figures of one load run."""

    ops: int
    wall_s: float
    errors: int
    error_samples: list[str]
    latencies_ms: list[float]
    client_cpu_s: float
    server_cpu_s: float
    projector_cpu_s: float  # the fleet projector's share of ``server_cpu_s``
    database_cpu_s: float  # PostgreSQL's processes (0 on SQLite, which runs in the server)
    tokens: list[str]

    @property
    def per_s(self) -> float:
        """Successful operations per second of wall time."""
        return self.ops / self.wall_s if self.wall_s else 0.0

    cycles_per_s = per_s

    def figures(self) -> dict[str, Any]:
        """The JSON-ready summary."""
        per_op = (lambda s: round(1000 * s / self.ops, 3)) if self.ops else (lambda s: None)
        return {
            "ops": self.ops,
            "per_s": round(self.per_s, 1),
            "cycles_per_s": round(self.per_s, 1),
            "p50_ms": round(percentile(self.latencies_ms, 50), 2),
            "p99_ms": round(percentile(self.latencies_ms, 99), 2),
            "errors": self.errors,
            "error_samples": self.error_samples,
            "server_cpu_ms": per_op(self.server_cpu_s),
            "projector_cpu_ms": per_op(self.projector_cpu_s),
            "database_cpu_ms": per_op(self.database_cpu_s),
            "client_cpu_ms": per_op(self.client_cpu_s),
        }


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def run_load(
    server: ServerProcess,
    agents: Sequence[Agent],
    *,
    mode: str = "cycle",
    concurrency: int = 32,
    seconds: float = 3.0,
    load_processes: int = 1,
    max_ops: int = 1_000_000,
    keep_tokens: bool = False,
    tokens: Sequence[str] = (),
    gateway_credential: str = "",
    database: Callable[[], Sequence[psutil.Process]] | None = None,
) -> LoadResult:
    """Drive ``concurrency`` clients in ``mode`` for ``seconds`` from ``load_processes``;
    ``database`` lists PostgreSQL's processes, whose CPU is reported beside the server's."""
    ctx = multiprocessing.get_context("spawn")
    out, start = ctx.Queue(), ctx.Queue()
    procs = []
    for i in range(load_processes):
        share = concurrency // load_processes + (1 if i < concurrency % load_processes else 0)
        # dpop: every process signs proofs for any token, so it holds every agent's key
        mine = agents if mode == "dpop" else agents[i::load_processes]
        spec = DriveSpec(
            host="127.0.0.1", port=server.port, mode=mode,
            agents=tuple(a.spec() for a in mine),
            tokens=tuple(tokens), gateway_credential=gateway_credential,
            concurrency=share, seconds=seconds,
            max_ops=max_ops // load_processes, keep_tokens=keep_tokens,
        )  # fmt: skip
        proc = ctx.Process(target=run_process, args=(spec, out, start))
        proc.start()
        procs.append(proc)
    for _ in procs:  # every process imported and connected
        if out.get(timeout=120) != "ready":
            raise RuntimeError("a load process failed before it was ready")
    start_at = time.time() + 0.1
    for _ in procs:
        start.put(start_at)
    time.sleep(max(0.0, start_at - time.time()))
    server_cpu0 = server.cpu_seconds()
    projector_cpu0 = server.cpu_seconds(named=PROJECTOR_NAME)
    database_cpu0 = tree_cpu_seconds(database()) if database is not None else 0.0
    results: list[DriveResult] = [out.get(timeout=seconds + 60) for _ in procs]
    server_cpu = server.cpu_seconds() - server_cpu0
    projector_cpu = server.cpu_seconds(named=PROJECTOR_NAME) - projector_cpu0
    database_cpu = tree_cpu_seconds(database()) - database_cpu0 if database is not None else 0.0
    wall = max(r.ended_at for r in results) - start_at
    for proc in procs:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
    latencies = [x for r in results for x in r.latencies_ms]
    return LoadResult(
        ops=len(latencies),
        wall_s=wall,
        errors=sum(r.errors for r in results),
        error_samples=[s for r in results for s in r.error_samples][:5],
        latencies_ms=latencies,
        client_cpu_s=sum(r.cpu_s for r in results),
        server_cpu_s=server_cpu,
        projector_cpu_s=projector_cpu,
        database_cpu_s=database_cpu,
        tokens=[t for r in results for t in r.tokens],
    )


def last_line_json(doc: dict[str, Any]) -> None:
    """Print the one machine-readable result, as the last line."""
    print(json.dumps(doc, sort_keys=True))


def cpu_count() -> int:
    """Cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
