"""The settle alone: spends with audit records through the store's group commit, no HTTP.

    .venv/bin/python bench/settle.py [--seconds 3] [--threads 32] [--db sqlite,postgres]

``--threads`` threads each spend fresh nonces with a typical attest record through
``SqlStore.spend_nonce`` for ``--seconds``, against SQLite (WAL, ``synchronous=FULL``) and a
throwaway PostgreSQL with fsync and ``synchronous_commit`` on (``tests.pg``). Prints spends
per second, p99 latency, this process's CPU and PostgreSQL's CPU per spend, and, as the
same-run baseline, a bare ``INSERT`` + ``COMMIT`` per spend on one driver connection (what a
settle costs without batching). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._load import last_line_json, percentile
from server.store import AuditEvent
from server.store.migrate import upgrade
from server.store.sql import SqlStore, make_engine

EXPIRES = 4_000_000_000
_DATA = {"key_class": "software", "policy_version": "bench", "signals": {"tz": "Europe/Lisbon"}}


def _postgres_cpu() -> float:
    total = 0.0
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] and proc.info["name"].startswith("postgres"):
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
    return total


def _drive(spend: Any, threads: int, seconds: float) -> dict[str, Any]:
    """Call ``spend(nonce)`` from ``threads`` threads for ``seconds``; the figures."""
    stop = time.monotonic() + seconds
    latencies: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        mine = []
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            spend(secrets.token_hex(16))
            mine.append(1000 * (time.perf_counter() - t0))
        with lock:
            latencies.extend(mine)

    me = psutil.Process()
    cpu0, pg0, t0 = sum(me.cpu_times()[:2]), _postgres_cpu(), time.monotonic()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.monotonic() - t0
    ops = len(latencies) or 1
    return {
        "per_s": round(len(latencies) / wall, 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "process_cpu_ms": round(1000 * (sum(me.cpu_times()[:2]) - cpu0) / ops, 3),
        "postgres_cpu_ms": round(1000 * (_postgres_cpu() - pg0) / ops, 3),
    }


def _store_run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    engine = make_engine(url)
    upgrade(engine)
    store = SqlStore(engine)

    def spend(nonce: str) -> None:
        event = AuditEvent("attest", "dev_bench", "allow", {**_DATA, "nonce": nonce})
        store.spend_nonce(
            nonce, binding="dev_bench", expires_at=EXPIRES, now=int(time.time()), audit=event
        )

    try:
        return _drive(spend, args.threads, args.seconds)
    finally:
        store.close()


def _baseline_run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """One serialized INSERT + durable COMMIT per spend on one connection."""
    engine = make_engine(url)
    raw = engine.raw_connection()
    db: Any = raw.driver_connection
    lock = threading.Lock()
    postgres = engine.dialect.name == "postgresql"
    insert = "INSERT INTO nonces (nonce, binding, expires_at) VALUES (%s, %s, %s)"
    if not postgres:
        insert = insert.replace("%s", "?")

    def spend(nonce: str) -> None:
        with lock:
            if not postgres:
                db.execute("BEGIN IMMEDIATE")
            db.execute(insert, (nonce, "dev_bench", EXPIRES))
            if postgres:
                db.commit()
            else:
                db.execute("COMMIT")

    try:
        return _drive(spend, args.threads, args.seconds)
    finally:
        raw.close()
        engine.dispose()


@contextlib.contextmanager
def _database(db: str, work: Path) -> Iterator[list[str]]:
    """Two fresh databases (store run, baseline run) as URLs."""
    if db == "sqlite":
        yield [f"sqlite:///{work / 'store.db'}", f"sqlite:///{work / 'baseline.db'}"]
        return
    from sqlalchemy import create_engine, text

    from tests.pg import fresh_database, running_postgres

    with running_postgres(work) as server_url:
        admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:  # the test cluster runs without fsync: turn it on
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                conn.execute(text(f"ALTER SYSTEM SET {setting} = on"))
            conn.execute(text("SELECT pg_reload_conf()"))
        admin.dispose()
        with fresh_database(server_url) as first, fresh_database(server_url) as second:
            yield [first, second]


def main() -> int:
    """Run each database's store and baseline within their bounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="load per run")
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite and/or postgres")
    args = parser.parse_args()
    if not 0.2 <= args.seconds <= 30:
        raise SystemExit("--seconds must be between 0.2 and 30")
    results: dict[str, Any] = {}
    for db in args.db.split(","):
        if db not in ("sqlite", "postgres"):
            raise SystemExit(f"unknown database {db!r}: sqlite or postgres")
        with (
            tempfile.TemporaryDirectory(prefix=f"bench-settle-{db}-") as tmp,
            _database(db, Path(tmp)) as (store_url, baseline_url),
        ):
            ours = _store_run(store_url, args)
            engine = make_engine(baseline_url)
            upgrade(engine)
            engine.dispose()
            base = _baseline_run(baseline_url, args)
        ratio = round(ours["per_s"] / base["per_s"], 2) if base["per_s"] else None
        results[db] = {"store": ours, "one_commit_per_spend": base, "ratio": ratio}
        for who, f in (("store", ours), ("baseline", base)):
            print(
                f"{db:<8} {who:<8} {f['per_s']:8.1f} spends/s  p99 {f['p99_ms']:6.1f} ms  "
                f"process CPU {f['process_cpu_ms']} ms  PostgreSQL CPU {f['postgres_cpu_ms']} ms"
            )
        print(f"{db:<8} ratio    {ratio}")
    last_line_json({"bench": "settle", "threads": args.threads, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
