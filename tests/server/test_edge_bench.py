"""bench/edge.py runs and reports the edge layer's cost against its same-run baseline."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.servers import REPO, clean_env


def test_the_edge_benchmark_reports_a_ratio_per_request() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "edge.py"), "--seconds", "0.5"],
        capture_output=True, text=True, env=clean_env(), cwd=REPO, check=True, timeout=60,
    )  # fmt: skip
    result = json.loads(done.stdout.splitlines()[-1])
    assert set(result) == {"GET /healthz", "POST /v1/challenge"}
    for figures in result.values():
        assert figures["edge_us"] > figures["baseline_us"] > 0
        # Each figure is rounded to 0.01, so the printed ratio lies in the interval that
        # rounding the two figures allows, widened by the ratio's own rounding.
        edge, base = figures["edge_us"], figures["baseline_us"]
        low = (edge - 0.005) / (base + 0.005) - 0.005
        high = (edge + 0.005) / (base - 0.005) + 0.005
        assert low <= figures["ratio"] <= high
