"""bench/verifier.py runs the verifier and its reference under the same load client and
reports figures that agree with each other: the ratio is the throughputs' ratio, the
projector's CPU is a share of the server's, and neither server had an error (in the dpop
run: every fresh proof was accepted by both)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests._support import need_tool
from tests.pg import HOW as PG_HOW
from tests.servers import REPO, clean_env


def test_the_verifier_benchmark_reports_both_servers_in_one_run() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "verifier.py"), "--runs",
         "cycle-sqlite-1,dpop-sqlite-1,authz-sqlite-1", "--seconds", "0.5", "--agents", "4",
         "--concurrency", "4"],
        capture_output=True, text=True, env=clean_env(), cwd=REPO, check=True, timeout=180,
    )  # fmt: skip
    result = json.loads(done.stdout.splitlines()[-1])
    # dpop before authz: the bearer run after it proves the policy was put back
    assert set(result["runs"]) == {"cycle-sqlite-1", "dpop-sqlite-1", "authz-sqlite-1"}
    for name, run in result["runs"].items():
        ours, reference = run["verifier"], run["reference"]
        for figures in (ours, reference):
            assert figures["errors"] == 0, (name, figures["error_samples"])
            assert figures["ops"] > 0
            assert figures["p99_ms"] >= figures["p50_ms"] > 0
            assert figures["server_cpu_ms"] > 0
            assert figures["client_cpu_ms"] > 0
        assert reference["projector_cpu_ms"] == 0  # the reference has no projector
        assert ours["database_cpu_ms"] == reference["database_cpu_ms"] == 0  # SQLite: in process
        assert 0 <= ours["projector_cpu_ms"] < ours["server_cpu_ms"]
        # each throughput is rounded to 0.1/s, the ratio to 0.001
        low = (ours["per_s"] - 0.05) / (reference["per_s"] + 0.05) - 0.0005
        high = (ours["per_s"] + 0.05) / (reference["per_s"] - 0.05) + 0.0005
        assert low <= run["ratio"] <= high
    assert "cycle-sqlite-1: ratio" in done.stdout


def test_on_postgresql_the_database_cpu_is_reported_for_both_servers() -> None:
    need_tool("initdb", PG_HOW)
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "verifier.py"), "--runs", "cycle-postgres-1",
         "--seconds", "0.5", "--agents", "4", "--concurrency", "4"],
        capture_output=True, text=True, env=clean_env(), cwd=REPO, check=True, timeout=240,
    )  # fmt: skip
    run = json.loads(done.stdout.splitlines()[-1])["runs"]["cycle-postgres-1"]
    for figures in (run["verifier"], run["reference"]):
        assert figures["errors"] == 0, figures["error_samples"]
        assert figures["database_cpu_ms"] > 0  # the cluster's processes were found and read
    assert "PostgreSQL CPU" in done.stdout
