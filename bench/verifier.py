"""Verifier throughput and latency: simulated agents run challenge -> attest cycles against a
real server process on loopback.

    .venv/bin/python bench/verifier.py --seconds 60 [--modes sqlite-1w,sqlite-2w,postgres]

Reports, per mode, cycles_per_s, p50/p95/p99 latency of a whole cycle, errors, server and
client CPU per cycle, and ``crypto_ratio`` = cycles_per_s / (ES256 verify + ES256 sign pairs
one core does in-process, measured in the same run). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._load import (
    BenchServer,
    crypto_pairs_per_s,
    disable_rate_limits,
    enroll_agents,
    inprocess_pipeline,
    last_line_json,
    run_load,
)
from tests.servers import init_verifier

MODES = ("sqlite-1w", "sqlite-2w", "postgres")
TARGET = {"cycles_per_s": 1000, "p99_ms": 50, "errors": 0}
STARTUP_S = 5.0  # per mode: init, start, enroll (outside the measured window)


@contextlib.contextmanager
def _database(mode: str, work: Path) -> Iterator[str]:
    """'' (the SQLite default) or the URL of a throwaway PostgreSQL."""
    if mode != "postgres":
        yield ""
        return
    from tests.pg import running_postgres  # type: ignore[import-not-found, unused-ignore]

    with running_postgres(work / "pg") as pg:
        yield pg.url if hasattr(pg, "url") else str(pg)


def _postgres_available() -> str | None:
    """None if the PostgreSQL mode can run, else why not."""
    try:
        import tests.pg  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        return "tests/pg.py (running_postgres) is not in this tree yet"
    if shutil.which("initdb") is None:
        return "initdb not found"
    return None


def _profile(server: BenchServer, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy over the server and its workers for the measured window: raw collapsed stacks of
    the thread holding the GIL (where Python CPU goes; fsync waits release the GIL)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists() or server.process is None:
        print("  (py-spy not found; no profile)")
        return None
    return subprocess.Popen(
        [
            spy, "record", "--pid", str(server.process.pid), "--subprocesses",
            "--duration", str(max(1, int(seconds))), "--rate", "250", "--format", "raw",
            "--output", str(out), "--nonblocking", "--gil",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def run_mode(
    mode: str,
    *,
    seconds: float,
    agents: int,
    concurrency: int,
    load_processes: int,
    http: str,
    loop: str,
    profile_dir: Path | None,
) -> dict[str, Any]:
    """One mode: fresh data directory, server, enrolled agents, warm-up, measured run."""
    with (
        tempfile.TemporaryDirectory(prefix=f"bench-{mode}-") as tmp,
        _database(mode, Path(tmp)) as url,
    ):
        handle = init_verifier(Path(tmp) / "verifier", database_url=url)
        disable_rate_limits(handle.data_dir)
        workers = 2 if mode == "sqlite-2w" else 1
        server = BenchServer(handle.data_dir, handle.port, workers=workers, http=http, loop=loop)
        server.start()
        try:
            enrolled = enroll_agents(
                server.url, handle.enroll_token(uses=agents), agents, Path(tmp) / "keys"
            )
            run_load(server, enrolled, concurrency=concurrency, seconds=1.0, load_processes=1)
            spy = None
            if profile_dir is not None:
                profile_dir.mkdir(parents=True, exist_ok=True)
                spy = _profile(server, seconds + 1.5, profile_dir / f"{mode}.txt")
            result = run_load(
                server,
                enrolled,
                concurrency=concurrency,
                seconds=seconds,
                load_processes=load_processes,
            )
            if spy is not None:
                spy.wait(timeout=seconds + 30)
        finally:
            server.stop()
        figures = result.figures()
        if mode == "sqlite-1w":
            figures["inprocess_pipeline"] = inprocess_pipeline(handle.data_dir, min(3.0, seconds))
    return figures


def main() -> int:
    """Run the modes within the time budget and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="bound on the whole run")
    parser.add_argument("--agents", type=int, default=64, help="enrolled simulated agents")
    parser.add_argument("--concurrency", type=int, default=32, help="agents in flight at once")
    parser.add_argument("--load-processes", type=int, default=1, help="load-generator processes")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--http", default="auto", help="uvicorn --http (h11, httptools)")
    parser.add_argument("--loop", default="auto", help="uvicorn --loop (asyncio, uvloop)")
    parser.add_argument("--profile-dir", type=Path, default=None, help="py-spy raw stacks here")
    args = parser.parse_args()

    started = time.monotonic()
    modes = [m for m in args.modes.split(",") if m]
    skipped: dict[str, str] = {}
    if "postgres" in modes and (why := _postgres_available()) is not None:
        skipped["postgres"] = why
        modes.remove("postgres")
    crypto_s = min(2.0, max(0.5, args.seconds / 30))
    pairs = crypto_pairs_per_s(crypto_s)
    print(f"crypto baseline: {pairs:,.0f} ES256 verify+sign pairs/s on one core (in-process)")
    per_mode = max(2.0, (args.seconds - crypto_s) / max(1, len(modes)) - STARTUP_S - 2.5)
    figures: dict[str, Any] = {}
    for mode in modes:
        got = run_mode(
            mode,
            seconds=per_mode,
            agents=args.agents,
            concurrency=args.concurrency,
            load_processes=args.load_processes,
            http=args.http,
            loop=args.loop,
            profile_dir=args.profile_dir,
        )
        got["crypto_ratio"] = round(got["cycles_per_s"] / pairs, 4)
        got["meets_target"] = (
            got["cycles_per_s"] >= TARGET["cycles_per_s"]
            and got["p99_ms"] < TARGET["p99_ms"]
            and got["errors"] == 0
        )
        figures[mode] = got
        print(
            f"{mode:>10}: {got['cycles_per_s']:8.1f} cycles/s  p50 {got['p50_ms']:6.1f} ms  "
            f"p95 {got['p95_ms']:6.1f} ms  p99 {got['p99_ms']:6.1f} ms  errors {got['errors']}  "
            f"server {got['server_cpu_ms_per_cycle']} ms CPU/cycle  "
            f"client {got['client_cpu_ms_per_cycle']} ms CPU/cycle  "
            f"crypto_ratio {got['crypto_ratio']}"
        )
        if "inprocess_pipeline" in got:
            inproc = got["inprocess_pipeline"]
            print(
                f"{'':>10}  same pipeline in-process, one thread, no HTTP: "
                f"{inproc['cycles_per_s']} cycles/s, {inproc['wall_ms_per_cycle']} ms wall and "
                f"{inproc['server_cpu_ms_per_cycle']} ms CPU per cycle"
            )
        for sample in got["error_samples"]:
            print(f"    error: {sample}")
    for mode, why in skipped.items():
        print(f"{mode:>10}: skipped ({why})")
    last_line_json(
        {
            "bench": "verifier",
            "agents": args.agents,
            "concurrency": args.concurrency,
            "load_processes": args.load_processes,
            "crypto_pairs_per_s": round(pairs, 1),
            "modes": figures,
            "skipped": skipped,
            "target": TARGET,
            "elapsed_s": round(time.monotonic() - started, 1),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
