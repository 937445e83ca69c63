"""The verifier's hot paths against a minimal reference doing the same work, in one run.

    .venv/bin/python bench/verifier.py [--seconds 3] [--runs cycle-sqlite-1,authz-sqlite-1]

Each run drives the verifier (``envattest-server serve --workers N``) and then the reference
(``bench/reference.py``, same uvicorn, same database, group commit) with the same load
client (``bench/_driver.py``: asyncio streams, keep-alive, its own process) and prints
throughput, p50/p99 latency, server and client CPU per operation, and the verifier's ratio
to the reference. Runs: ``MODE-DB-WORKERS`` with MODE cycle|authz|dpop|introspect, DB
sqlite|postgres, WORKERS 1|2 (``dpop``: forward auth with DPoP-bound tokens and a fresh proof
per request, signed before the measured window). Bounded: ``--seconds`` of load per server
per run plus about 10 s of set-up per database. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._driver import DPOP_EXTERNAL_URL
from bench._load import (
    Agent,
    ServerProcess,
    disable_rate_limits,
    enroll_agents,
    last_line_json,
    postgres_processes,
    reference_server,
    run_load,
    verifier_server,
)
from bench.reference import GATEWAY_SECRET, prepare
from tests._support import free_port
from tests.servers import init_verifier, run_server_cli

RUNS = (
    "cycle-sqlite-1", "cycle-sqlite-2", "authz-sqlite-1", "dpop-sqlite-1", "introspect-sqlite-1",
    "cycle-postgres-1", "cycle-postgres-2",
)  # fmt: skip
MODES = ("cycle", "authz", "dpop", "introspect")
CLIENT_CPU_BUDGET_MS = 0.3


@dataclass(frozen=True)
class Run:
    """One line of the report."""

    mode: str
    db: str
    workers: int

    @classmethod
    def parse(cls, text: str) -> Run:
        mode, db, workers = text.split("-")
        if mode not in MODES or db not in ("sqlite", "postgres"):
            raise SystemExit(f"unknown run {text!r}: MODE-DB-WORKERS, e.g. cycle-sqlite-1")
        return cls(mode, db, int(workers))

    @property
    def name(self) -> str:
        return f"{self.mode}-{self.db}-{self.workers}"


Database = Callable[[], Sequence[psutil.Process]] | None  # PostgreSQL's processes


@contextlib.contextmanager
def _databases(db: str, work: Path) -> Iterator[tuple[str, str, Database]]:
    """(verifier URL, reference database, PostgreSQL's processes) on SQLite files or on one
    durable PostgreSQL."""
    if db == "sqlite":
        yield "", str(work / "reference.db"), None
        return
    from sqlalchemy import create_engine, text

    from tests.pg import fresh_database, running_postgres

    with running_postgres(work) as server_url:
        engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:  # the test cluster runs without fsync: turn it on
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                conn.execute(text(f"ALTER SYSTEM SET {setting} = on"))
            conn.execute(text("SELECT pg_reload_conf()"))
        engine.dispose()
        with fresh_database(server_url) as verifier_url, fresh_database(server_url) as ref_url:
            yield verifier_url, ref_url, postgres_processes(server_url)


@contextlib.contextmanager
def _token_binding(data_dir: Path, run: Run) -> Iterator[None]:
    """For a ``dpop`` run the verifier issues DPoP-bound tokens (``[token] binding``); the
    policy is put back afterwards, so the other runs get bearer tokens."""
    if run.mode != "dpop":
        yield
        return
    policy = data_dir / "policy.toml"
    original = policy.read_text()
    if "\n[token]\n" not in original:
        raise SystemExit(f"{policy} has no [token] table to bind tokens in")
    policy.write_text(original.replace("\n[token]\n", '\n[token]\nbinding = "dpop"\n', 1))
    try:
        yield
    finally:
        policy.write_text(original)


def _profile(server: ServerProcess, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy over the server and its workers: collapsed stacks of where CPU goes."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists() or server.process is None:
        return None
    return subprocess.Popen(
        [spy, "record", "--pid", str(server.process.pid), "--subprocesses", "--duration",
         str(max(1, round(seconds))), "--rate", "500", "--format", "raw", "--output", str(out),
         "--nonblocking", "--gil"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _measure(
    server: ServerProcess, agents: list[Agent], run: Run, args: argparse.Namespace,
    credential: str, profile: Path | None, database: Database,
) -> dict[str, Any]:  # fmt: skip
    """Warm up (and collect tokens), then the measured window."""
    warm = run_load(server, agents, mode="cycle", concurrency=args.concurrency, seconds=1.0,
                    max_ops=400, keep_tokens=True)  # fmt: skip
    if not warm.tokens:
        raise SystemExit(f"{run.name}: warm-up got no token: {warm.error_samples}")
    spy = _profile(server, args.seconds + 1, profile) if profile is not None else None
    got = run_load(
        server, agents, mode=run.mode, concurrency=args.concurrency, seconds=args.seconds,
        load_processes=args.load_processes, tokens=warm.tokens[:64],
        gateway_credential=credential, database=database,
    ).figures()  # fmt: skip
    if spy is not None:
        spy.wait(timeout=args.seconds + 30)
    return got


def _run_db(db: str, runs: list[Run], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with _databases(db, work) as (verifier_url, reference_db, database):
        handle = init_verifier(work / "verifier", database_url=verifier_url)
        disable_rate_limits(handle.data_dir)
        with (handle.data_dir / "server.toml").open("a") as config:  # the URL proofs name
            config.write(f'authz_external_url = "{DPOP_EXTERNAL_URL}"\n')
        credential = run_server_cli(
            ["gateway-credential", "create", "--data-dir", str(handle.data_dir), "--name", "bench"]
        ).strip()
        agents: list[Agent] = []
        for run in runs:
            port = free_port()
            with _token_binding(handle.data_dir, run):
                verifier = verifier_server(handle.data_dir, port, workers=run.workers).start()
                try:
                    if not agents:
                        token = handle.enroll_token(uses=args.agents)
                        agents = enroll_agents(verifier.url, token, args.agents, work / "keys")
                        prepare(reference_db, {a.device_id: a.public_jwk for a in agents})
                    profile = None
                    if args.profile_dir is not None:
                        args.profile_dir.mkdir(parents=True, exist_ok=True)
                        profile = args.profile_dir / f"{run.name}.txt"
                    ours = _measure(verifier, agents, run, args, credential, profile, database)
                finally:
                    verifier.stop()
            reference = reference_server(reference_db, free_port(), work, workers=run.workers)
            reference.start()
            try:
                ref = _measure(reference, agents, run, args, GATEWAY_SECRET, None, database)
            finally:
                reference.stop()
            ratio = round(ours["per_s"] / ref["per_s"], 3) if ref["per_s"] else None
            results[run.name] = {"verifier": ours, "reference": ref, "ratio": ratio}
            _print(run, ours, ref, ratio)
    return results


def _print(run: Run, ours: dict[str, Any], ref: dict[str, Any], ratio: float | None) -> None:
    def line(who: str, f: dict[str, Any]) -> str:
        return (
            f"  {who:<9} {f['per_s']:8.1f}/s  p50 {f['p50_ms']:6.1f} ms  p99 {f['p99_ms']:6.1f} ms"
            f"  server CPU {f['server_cpu_ms']} ms/op"
            + (f" (projector {f['projector_cpu_ms']})" if f["projector_cpu_ms"] else "")
            + (f"  PostgreSQL CPU {f['database_cpu_ms']} ms/op" if f["database_cpu_ms"] else "")
            + f"  client CPU {f['client_cpu_ms']} ms/op"
            f"  errors {f['errors']}"
        )

    print(f"{run.name}: ratio {ratio}")
    print(line("verifier", ours))
    print(line("reference", ref))
    for sample in ours["error_samples"] + ref["error_samples"]:
        print(f"    error: {sample}")
    client = max(ours["client_cpu_ms"] or 0, ref["client_cpu_ms"] or 0)
    if client > CLIENT_CPU_BUDGET_MS:
        print(f"    note: client CPU {client} ms/op is over {CLIENT_CPU_BUDGET_MS} ms")


def main() -> int:
    """Run the chosen runs within their bounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="load per server per run")
    parser.add_argument("--agents", type=int, default=64, help="enrolled simulated agents")
    parser.add_argument("--concurrency", type=int, default=32, help="clients in flight")
    parser.add_argument("--load-processes", type=int, default=1)
    parser.add_argument("--runs", default=",".join(RUNS), help="MODE-DB-WORKERS list")
    parser.add_argument("--profile-dir", type=Path, default=None, help="py-spy stacks here")
    args = parser.parse_args()
    if not 0.5 <= args.seconds <= 60:
        raise SystemExit("--seconds must be between 0.5 and 60")
    runs = [Run.parse(r) for r in args.runs.split(",") if r]
    started = time.monotonic()
    figures: dict[str, Any] = {}
    for db in ("sqlite", "postgres"):
        chosen = [r for r in runs if r.db == db]
        if chosen:
            with tempfile.TemporaryDirectory(prefix=f"bench-{db}-") as tmp:
                figures.update(_run_db(db, chosen, args, Path(tmp)))
    last_line_json(
        {
            "bench": "verifier",
            "concurrency": args.concurrency,
            "seconds": args.seconds,
            "runs": figures,
            "elapsed_s": round(time.monotonic() - started, 1),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
