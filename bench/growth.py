"""Does the attestation cycle slow down as the database grows?

    .venv/bin/python bench/growth.py --seconds 120 [--scale 0.1]

Seeds one SQLite data directory (real schema, bulk inserts through SQLAlchemy Core, a correct
audit hash chain via ``server.audit.chain_hash`` so ``audit verify`` passes) up to 1k, 10k and
100k devices with 10 audit records per device (~1M at the largest), runs the same
challenge -> attest load at each size, and reports throughput and its ratio to the smallest
size (the baseline of this run). Prints EXPLAIN QUERY PLAN of every statement one real cycle
issues, flagging table scans. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, event, insert, select

from bench._load import (
    Agent,
    BenchServer,
    disable_rate_limits,
    enroll_agents,
    last_line_json,
    run_load,
)
from server.audit import GENESIS_HASH, chain_hash, data_digest, serialize_data
from server.store.schema import audit_log, devices
from tests.servers import init_verifier

SIZES = (1_000, 10_000, 100_000)
AUDIT_PER_DEVICE = 10
BATCH = 20_000
MAX_DROP = 0.20
_FAKE_JWK = {"kty": "EC", "crv": "P-256", "x": "A" * 43, "y": "B" * 43}


def _audit_data(i: int) -> dict[str, Any]:
    """About the shape and size of a real attest record, without the chain cost of JSON."""
    return {
        "key_class": "software",
        "policy_version": "seed",
        "results": [{"rule": "clock_skew", "mode": "enforce", "passed": True, "reason": "ok"}],
        "signals": {"timezone.iana": "Europe/Lisbon", "timezone.utc_offset_s": 0},
        "nonce_sha256": hashlib.sha256(str(i).encode()).hexdigest(),
        "iat": 1_700_000_000 + i,
        "clock_skew_s": 0,
        "swversion": "0.1.0",
        "jti": f"seed-{i}",
    }


def seed(url: str, *, devices_to: int, audit_to: int, deadline: float) -> tuple[int, int]:
    """Grow the database to ``devices_to`` devices and ``audit_to`` audit records (stopping
    early at ``deadline``); return the counts reached. The verifier must not be running."""
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _fast(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA synchronous=OFF")  # seeding only: speed over durability

    with engine.begin() as conn:
        have_devices = conn.execute(select(devices.c.device_id)).all()
        n_devices = len(have_devices)
        ids = [r.device_id for r in have_devices]
        head = conn.execute(
            select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
        ).first()
    seq, prev = (head.seq, head.hash) if head is not None else (0, GENESIS_HASH)
    now = int(time.time())
    while n_devices < devices_to and time.monotonic() < deadline:
        rows = []
        for _ in range(min(BATCH, devices_to - n_devices)):
            device_id = "dev_seed" + secrets.token_urlsafe(12)
            rows.append(
                {
                    "device_id": device_id,
                    "public_jwk": json.dumps(_FAKE_JWK, sort_keys=True),
                    "jkt": secrets.token_hex(32),
                    "key_class": "software",
                    "enrolled_at": now,
                }
            )
            ids.append(device_id)
        with engine.begin() as conn:
            conn.execute(insert(devices), rows)
        n_devices += len(rows)
    while seq < audit_to and time.monotonic() < deadline:
        rows = []
        for _ in range(min(BATCH, audit_to - seq)):
            seq += 1
            owner = ids[seq % len(ids)] if ids else None
            data = serialize_data(_audit_data(seq))
            digest = data_digest(data)
            record_hash = chain_hash(
                prev_hash=prev,
                seq=seq,
                at=now,
                event="attest",
                device_id=owner,
                decision="allow",
                data_sha256=digest,
            )
            rows.append(
                {
                    "seq": seq,
                    "at": now,
                    "event": "attest",
                    "device_id": owner,
                    "decision": "allow",
                    "data": data,
                    "data_sha256": digest,
                    "prev_hash": prev,
                    "hash": record_hash,
                }
            )
            prev = record_hash
        with engine.begin() as conn:
            conn.execute(insert(audit_log), rows)
    with engine.connect() as conn:  # start each measured run with an empty WAL
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return n_devices, seq


def hot_path_plans(data_dir: Path, agent: Agent) -> list[dict[str, Any]]:
    """EXPLAIN QUERY PLAN of every statement one in-process challenge -> attest issues."""
    from attest.evidence import ConsentClaim, new_claims, sign_evidence
    from attest.keys.software import SoftwareKey
    from server.config import load_config
    from server.runtime import build_runtime

    runtime = build_runtime(load_config(data_dir))
    seen: list[tuple[str, Any]] = []

    @event.listens_for(runtime.store.engine, "before_cursor_execute")
    def _record(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        seen.append((statement, params))

    manifest = runtime.manifest
    nonce = runtime.verifier.challenge(agent.device_id).nonce
    now = int(time.time())
    claims = new_claims(
        nonce=nonce,
        device_id=agent.device_id,
        consent=ConsentClaim(manifest.sha256, now, tuple(sorted(manifest.field_ids))),  # type: ignore[arg-type]
        signals={r.field.id: r.field.example for r in manifest.fields},
        now=now,
    )
    evidence = sign_evidence(claims, SoftwareKey.load(Path(agent.key_path)).sign)
    runtime.verifier.attest(evidence.encode())
    runtime.store.engine.dispose()
    db = sqlite3.connect(runtime.config.resolved_database_url.removeprefix("sqlite:///"))
    plans = []
    for statement, params in seen:
        head = statement.lstrip().split()[0].upper()
        if head in ("BEGIN", "PRAGMA", "COMMIT", "ROLLBACK") or head == "INSERT":
            continue
        rows = db.execute(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()
        detail = [r[3] for r in rows]
        scans = [d for d in detail if d.startswith("SCAN") and "INDEX" not in d]
        plans.append({"sql": " ".join(statement.split())[:160], "plan": detail, "scans": scans})
    db.close()
    return plans


def main() -> int:
    """Seed, load, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120, help="bound on the whole run")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size by this")
    parser.add_argument("--agents", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    started = time.monotonic()
    budget_end = started + args.seconds
    sizes = [max(10, int(s * args.scale)) for s in SIZES]
    # half the budget for seeding, the rest for the measured runs and their start-up
    seed_deadline = started + args.seconds * 0.5
    load_s = max(2.0, (args.seconds * 0.5 - 8 * len(sizes)) / len(sizes))
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-growth-") as tmp:
        handle = init_verifier(Path(tmp) / "verifier")
        disable_rate_limits(handle.data_dir)
        url = f"sqlite:///{handle.data_dir / 'envattest.db'}"
        agents: list[Agent] = []
        for size in sizes:
            t0 = time.monotonic()
            n_dev, n_audit = seed(
                url,
                devices_to=size - (0 if agents else args.agents),
                audit_to=size * AUDIT_PER_DEVICE,
                deadline=seed_deadline,
            )
            seeded_s = time.monotonic() - t0
            server = BenchServer(handle.data_dir, handle.port).start()
            try:
                if not agents:
                    agents = enroll_agents(
                        server.url,
                        handle.enroll_token(uses=args.agents),
                        args.agents,
                        Path(tmp) / "keys",
                    )
                run_load(server, agents, concurrency=args.concurrency, seconds=1.0)
                seconds = min(load_s, max(2.0, budget_end - time.monotonic() - 10))
                got = run_load(server, agents, concurrency=args.concurrency, seconds=seconds)
            finally:
                server.stop()
            figures = got.figures()
            with sqlite3.connect(handle.data_dir / "envattest.db") as db:
                n_dev = db.execute("SELECT count(*) FROM devices").fetchone()[0]
                n_audit = db.execute("SELECT max(seq) FROM audit_log").fetchone()[0]
            row = {
                "devices": n_dev,
                "audit_records": n_audit,
                "seed_s": round(seeded_s, 1),
                **{k: figures[k] for k in ("cycles_per_s", "p50_ms", "p99_ms", "errors")},
            }
            results.append(row)
            print(
                f"{row['devices']:>7} devices {row['audit_records']:>8} audit records "
                f"(seeded in {row['seed_s']} s): {row['cycles_per_s']:7.1f} cycles/s  "
                f"p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms  errors {row['errors']}"
            )
        plans = hot_path_plans(handle.data_dir, agents[0])
    base = results[0]["cycles_per_s"] or 1.0
    for row in results:
        row["ratio_to_smallest"] = round(row["cycles_per_s"] / base, 3)
    worst = min(r["ratio_to_smallest"] for r in results)
    scans = [p for p in plans if p["scans"]]
    print("hot-path query plans:")
    for p in plans:
        print(f"  {'SCAN! ' if p['scans'] else ''}{p['sql']}\n      -> {'; '.join(p['plan'])}")
    print(f"worst ratio to smallest: {worst} (must stay >= {1 - MAX_DROP})")
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
