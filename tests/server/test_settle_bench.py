"""bench/settle.py reports the store's settle against its same-run baseline; bench/growth.py
seeds a database whose audit chain verifies."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench.growth import DB_FILE, seed
from tests.servers import REPO, clean_env, init_verifier, run_server_cli


def test_the_settle_benchmark_reports_a_ratio_to_one_commit_per_spend() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "settle.py"), "--seconds", "0.3", "--threads", "4",
         "--db", "sqlite"],
        capture_output=True, text=True, env=clean_env(), cwd=REPO, check=True, timeout=60,
    )  # fmt: skip
    result = json.loads(done.stdout.splitlines()[-1])["results"]["sqlite"]
    assert result["store"]["per_s"] > 0
    assert result["one_commit_per_spend"]["per_s"] > 0
    # Rates are rounded to 0.1 and the ratio to 0.01: the printed ratio lies in the interval
    # that rounding allows.
    ours, base = result["store"]["per_s"], result["one_commit_per_spend"]["per_s"]
    low = (ours - 0.05) / (base + 0.05) - 0.005
    high = (ours + 0.05) / (base - 0.05) + 0.005
    assert low <= result["ratio"] <= high


def test_the_growth_seeder_writes_a_chain_that_audit_verify_accepts(tmp_path: Path) -> None:
    handle = init_verifier(tmp_path / "verifier")
    deadline = time.monotonic() + 30
    reached = seed(handle.data_dir / DB_FILE, devices_to=300, audit_to=3000, deadline=deadline)
    assert reached == (300, 3000)
    again = seed(handle.data_dir / DB_FILE, devices_to=400, audit_to=4000, deadline=deadline)
    assert again == (400, 4000)  # grown in place, the chain continued
    run_server_cli(["audit", "checkpoint", "--data-dir", str(handle.data_dir)])
    out = run_server_cli(["audit", "verify", "--data-dir", str(handle.data_dir)])
    assert "audit chain verified: 4000 records" in out
