"""How fast do the console's fleet and fields pages render as the fleet grows?

    .venv/bin/python bench/console.py [--sizes 1000,10000,100000] [--requests 40] [--seconds 20]

Grows one SQLite data directory to each size (bulk inserts of devices and a valid audit chain
of enrollments and attestations with varied signals, ``tests/console/fleet.py``), brings the
console's fleet tables up to date (timed: records/s), then requests ``/`` (fleet) and
``/fields`` through the whole console application in process (session check, page-view audit
record, queries, template) and reports p50/p99 per page and size, with each p99's ratio to
the smallest size (the baseline of this run). Target: p99 <= 300 ms at 100k devices. The last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient

from server.config import load_config
from server.console.accounts import create_password_user
from server.console.app import create_console_app
from server.console.context import build_console_context
from tests.console.fleet import FleetSpec, seed_fleet
from tests.servers import init_verifier

PAGES = ("/", "/fields", "/devices")
TARGET_P99_MS = 300.0
PASSWORD = "bench-password-long-enough"


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _measure(client: TestClient, path: str, *, requests: int, seconds: float) -> dict[str, float]:
    for _ in range(3):  # warm caches (SQLite pages, templates)
        client.get(path).raise_for_status()
    samples: list[float] = []
    deadline = time.monotonic() + seconds
    while len(samples) < requests and time.monotonic() < deadline:
        start = time.perf_counter()
        client.get(path).raise_for_status()
        samples.append((time.perf_counter() - start) * 1000)
    return {
        "n": len(samples),
        "p50_ms": round(statistics.median(samples), 1),
        "p99_ms": round(_percentile(samples, 0.99), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--requests", type=int, default=40, help="per page and size")
    parser.add_argument("--seconds", type=float, default=20.0, help="at most, per page and size")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="envattest-console-bench-") as tmp:
        verifier = init_verifier(Path(tmp) / "data")
        config = load_config(verifier.data_dir)
        ctx = build_console_context(config, secure_cookies=False)
        create_password_user(ctx.accounts, "bench", PASSWORD, now=int(time.time()))
        have = 0
        for step, size in enumerate(sizes):
            start = time.perf_counter()
            spec = FleetSpec(
                devices=size - have,
                attestations_per_device=1,
                id_prefix=f"dev{step}",
                start_at=int(time.time()) - 86_400,
            )
            seed_fleet(ctx.store.engine, spec)
            seeded_s = time.perf_counter() - start
            have = size
            start = time.perf_counter()
            applied = 0
            while n := ctx.projection.catch_up(now=int(time.time()), limit=10_000):
                applied += n
            projected_s = time.perf_counter() - start
            with TestClient(create_console_app(ctx)) as client:
                page = client.get("/login").text
                csrf = page.split('name="csrf" value="')[1].split('"')[0]
                client.post(
                    "/login", data={"username": "bench", "password": PASSWORD, "csrf": csrf}
                )
                pages = {
                    p: _measure(client, p, requests=args.requests, seconds=args.seconds)
                    for p in PAGES
                }
            results[size] = {
                "seed_s": round(seeded_s, 1),
                "projection_records_per_s": round(applied / max(projected_s, 1e-9)),
                "pages": pages,
            }
            print(
                f"{size:>7} devices: seeded in {seeded_s:.1f} s, fleet tables built at "
                f"{results[size]['projection_records_per_s']} records/s",
                flush=True,
            )
            for path, figures in pages.items():
                print(
                    f"          {path:<9} p50 {figures['p50_ms']:>7.1f} ms  "
                    f"p99 {figures['p99_ms']:>7.1f} ms  (n={figures['n']})",
                    flush=True,
                )
        ctx.store.engine.dispose()
    base = sizes[0]
    summary = {
        "bench": "console",
        "sizes": sizes,
        "results": results,
        "p99_ratio_to_smallest": {
            str(size): {
                p: round(
                    results[size]["pages"][p]["p99_ms"] / results[base]["pages"][p]["p99_ms"], 2
                )
                for p in PAGES
            }
            for size in sizes
        },
        "target_p99_ms": TARGET_P99_MS,
        "target_met": all(
            results[sizes[-1]]["pages"][p]["p99_ms"] <= TARGET_P99_MS for p in ("/", "/fields")
        ),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
