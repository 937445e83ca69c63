"""Does the attestation cycle slow down as the database grows?

    .venv/bin/python bench/growth.py [--load-seconds 3] [--rounds 2] [--scale 1.0]

Builds one SQLite data directory per size (1k, 10k and 100k devices with 10 audit records
each, so 10k, 100k and 1M records at the largest), all copies of one directory where the load
agents enrolled, then grown by bulk inserts (the stdlib driver, ``synchronous=OFF`` while
seeding, a correct hash chain from ``server.audit.chain_hash`` so ``audit verify`` passes,
the fleet projection's cursor set to the seeded head as if it had kept up). It then runs the
same challenge -> attest load against each size in turn, ``--rounds`` times in alternating
order so a machine whose load drifts does not favour one size, and reports each size's
median throughput and server CPU per cycle, each as a ratio to the smallest size (bound: at
most 10 % throughput loss; CPU per cycle is the steadier figure on a shared machine).
EXPLAIN QUERY PLAN of the hot statements flags table scans. Bounded: seeding stops at
``--seed-seconds`` (the sizes reached are printed), each run is ``--load-seconds``. The last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._load import (
    Agent,
    disable_rate_limits,
    enroll_agents,
    last_line_json,
    run_load,
    verifier_server,
)
from server.audit import GENESIS_HASH, chain_hash, data_digest, serialize_data
from tests._support import free_port
from tests.servers import init_verifier

SIZES = (1_000, 10_000, 100_000)
AUDIT_PER_DEVICE = 10
BATCH = 50_000
MAX_DROP = 0.10
DB_FILE = "envattest.db"
_FAKE_JWK = json.dumps({"kty": "EC", "crv": "P-256", "x": "A" * 43, "y": "B" * 43})
_MARK = "0" * 63 + "X"  # where each record's own value goes in the data template


def _data_template() -> tuple[str, str, str]:
    """The serialized data of a typical attest record, split around its two per-record
    values (nonce digest and token id): filling them in gives exactly what
    ``serialize_data`` would, without serializing a million dicts."""
    data = {
        "key_class": "software",
        "policy_version": "seed",
        "results": [{"rule": "clock_skew", "mode": "enforce", "passed": True, "reason": "ok"}],
        "signals": {"timezone.iana": "Europe/Lisbon", "timezone.utc_offset_s": 0},
        "nonce_sha256": _MARK,
        "iat": 1_700_000_000,
        "clock_skew_s": 0,
        "swversion": "0.1.0",
        "jti": _MARK,
    }
    first, second, third = serialize_data(data).split(_MARK)
    return first, second, third


def _audit_rows(
    seq: int, prev: str, count: int, owners: list[str], now: int
) -> Iterator[tuple[Any, ...]]:
    first, second, third = _data_template()
    for _ in range(count):
        seq += 1
        value = f"{seq:064x}"
        data = first + value + second + value + third
        digest = data_digest(data)
        owner = owners[seq % len(owners)] if owners else None
        record_hash = chain_hash(
            prev_hash=prev, seq=seq, at=now, event="attest", device_id=owner,
            decision="allow", data_sha256=digest,
        )  # fmt: skip
        yield (seq, now, "attest", owner, "allow", data, digest, prev, record_hash)
        prev = record_hash


def seed(db_path: Path, *, devices_to: int, audit_to: int, deadline: float) -> tuple[int, int]:
    """Grow the database to ``devices_to`` devices and ``audit_to`` audit records (stopping
    early at ``deadline``); return the counts reached. The verifier must not be running."""
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")  # seeding only: speed over durability
    owners = [r[0] for r in db.execute("SELECT device_id FROM devices")]
    head = db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (head[0], head[1]) if head is not None else (0, GENESIS_HASH)
    now = int(time.time())
    while len(owners) < devices_to and time.monotonic() < deadline:
        n = min(BATCH, devices_to - len(owners))
        ids = [f"dev_seed{len(owners) + i:012d}" for i in range(n)]
        rows = [
            (d, _FAKE_JWK, hashlib.sha256(d.encode()).hexdigest(), "software", now) for d in ids
        ]
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO devices (device_id, public_jwk, jkt, key_class, enrolled_at)"
            " VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        db.execute("COMMIT")
        owners += ids
    while seq < audit_to and time.monotonic() < deadline:
        rows = list(_audit_rows(seq, prev, min(BATCH, audit_to - seq), owners, now))
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO audit_log (seq, at, event, device_id, decision, data, data_sha256,"
            " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        db.execute("COMMIT")
        seq, prev = rows[-1][0], rows[-1][-1]
    # a deployment this size has its fleet projection caught up: start the runs there
    db.execute(
        "INSERT INTO projection_cursor (name, seq) VALUES ('fleet', ?)"
        " ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
        (seq,),
    )
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # start each measured run with an empty WAL
    db.close()
    return len(owners), seq


def hot_path_plans(db_path: Path) -> list[dict[str, Any]]:
    """EXPLAIN QUERY PLAN of the statements a cycle runs whose cost could grow with the
    tables (the spend's insert and the audit append's insert use primary keys)."""
    from server.store.auditlog import _HEAD
    from server.store.devices import _GET_DEVICE

    db = sqlite3.connect(db_path)
    device = db.execute("SELECT device_id FROM devices LIMIT 1").fetchone()[0]
    statements = [
        (_GET_DEVICE.replace("%s", "?"), (device,)),
        (_HEAD, ()),
        ("SELECT nonce FROM nonces WHERE nonce = ?", ("n",)),  # the spend's conflict check
    ]
    plans = []
    for statement, params in statements:
        detail = [r[3] for r in db.execute(f"EXPLAIN QUERY PLAN {statement}", params)]
        scans = [d for d in detail if d.startswith("SCAN") and "INDEX" not in d]
        plans.append({"sql": " ".join(statement.split())[:160], "plan": detail, "scans": scans})
    db.close()
    return plans


def _measure(
    data_dir: Path, agents: list[Agent], args: argparse.Namespace
) -> dict[str, Any]:  # fmt: skip
    server = verifier_server(data_dir, free_port()).start()
    try:
        run_load(server, agents, concurrency=args.concurrency, seconds=1.0)  # warm up
        figures = run_load(
            server, agents, concurrency=args.concurrency, seconds=args.load_seconds
        ).figures()
    finally:
        server.stop()
    return figures


def main() -> int:
    """Seed, load, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load-seconds", type=float, default=3.0, help="load per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs per size, alternating")
    parser.add_argument("--seed-seconds", type=float, default=180, help="bound on seeding")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size by this")
    parser.add_argument("--agents", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    if not 0.5 <= args.load_seconds <= 30 or not 1 <= args.rounds <= 5:
        raise SystemExit("--load-seconds must be 0.5-30 and --rounds 1-5")
    started = time.monotonic()
    sizes = [max(args.agents + 10, int(s * args.scale)) for s in SIZES]
    with tempfile.TemporaryDirectory(prefix="bench-growth-") as tmp:
        work = Path(tmp)
        base = init_verifier(work / "base")
        disable_rate_limits(base.data_dir)
        server = verifier_server(base.data_dir, free_port()).start()
        try:
            token = base.enroll_token(uses=args.agents)
            agents = enroll_agents(server.url, token, args.agents, work / "keys")
        finally:
            server.stop()
        seed_deadline = time.monotonic() + args.seed_seconds
        seeded: list[dict[str, Any]] = []
        for size in sizes:
            data_dir = work / f"size-{size}"
            shutil.copytree(base.data_dir, data_dir)
            t0 = time.monotonic()
            n_dev, n_audit = seed(
                data_dir / DB_FILE,
                devices_to=size,
                audit_to=size * AUDIT_PER_DEVICE,
                deadline=seed_deadline,
            )
            seeded.append(
                {"data_dir": data_dir, "devices": n_dev, "audit_records": n_audit,
                 "seed_s": round(time.monotonic() - t0, 1)}
            )  # fmt: skip
            print(
                f"seeded {n_dev:>7} devices {n_audit:>8} audit records in {seeded[-1]['seed_s']} s"
            )
        runs: list[list[dict[str, Any]]] = [[] for _ in sizes]
        for round_no in range(args.rounds):
            order = range(len(sizes)) if round_no % 2 == 0 else reversed(range(len(sizes)))
            for i in order:
                runs[i].append(_measure(seeded[i]["data_dir"], agents, args))
        plans = hot_path_plans(seeded[-1]["data_dir"] / DB_FILE)
    results = []
    for size, runs_of_size in zip(seeded, runs, strict=True):
        per_s = [r["per_s"] for r in runs_of_size]
        results.append(
            {"devices": size["devices"], "audit_records": size["audit_records"],
             "seed_s": size["seed_s"], "per_s_runs": per_s, "per_s": statistics.median(per_s),
             "p99_ms": max(r["p99_ms"] for r in runs_of_size),
             "server_cpu_ms": round(statistics.median(r["server_cpu_ms"] or 0
                                                      for r in runs_of_size), 3),
             "errors": sum(r["errors"] for r in runs_of_size)}
        )  # fmt: skip
    base_rate = results[0]["per_s"] or 1.0
    base_cpu = results[0]["server_cpu_ms"] or 1.0
    for row in results:
        row["ratio_to_smallest"] = round(row["per_s"] / base_rate, 3)
        row["cpu_ratio_to_smallest"] = round(row["server_cpu_ms"] / base_cpu, 3)
        print(
            f"{row['devices']:>7} devices {row['audit_records']:>8} audit records: "
            f"{row['per_s']:7.1f} cycles/s (runs {row['per_s_runs']})  p99 {row['p99_ms']} ms  "
            f"server CPU {row['server_cpu_ms']} ms/cycle  errors {row['errors']}  "
            f"ratio {row['ratio_to_smallest']}"
        )
    worst = min(r["ratio_to_smallest"] for r in results)
    scans = [p for p in plans if p["scans"]]
    print("hot-path query plans (largest size):")
    for p in plans:
        print(f"  {'SCAN! ' if p['scans'] else ''}{p['sql']}\n      -> {'; '.join(p['plan'])}")
    largest = results[-1]
    print(
        f"largest / smallest: throughput {largest['ratio_to_smallest']}, server CPU per cycle "
        f"{largest['cpu_ratio_to_smallest']}; worst throughput {worst} (bound >= {1 - MAX_DROP})"
    )
    last_line_json(
        {
            "bench": "growth",
            "sizes": results,
            "worst_ratio": worst,
            "within_bound": worst >= 1 - MAX_DROP,
            "table_scans_on_hot_path": [p["sql"] for p in scans],
            "elapsed_s": round(time.monotonic() - started, 1),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
