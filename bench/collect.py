"""Benchmark signal collection: per family and all together, on a recording and on this machine.

Usage: python bench/collect.py [--seconds S] [--runs N] [--recording DIR]

Prints a table of median and p95 per case, then one JSON object on the last line. The
baseline is measured in the same run (reading one small file, the unit of work collectors
mostly do; json.dumps of the recorded signals is reported too), so the ratio says how many
such reads all collection costs on this machine at this moment. Target: all
families together under 100 ms on this machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.collectors import CollectionContext, collect_signals  # noqa: E402
from agent.collectors.recorded import load_recording  # noqa: E402
from attest.catalog import CATALOG, Family, fields_of  # noqa: E402

TARGET_MS = 100.0
CASES: dict[str, list[str]] = {
    **{family.value: [f.id for f in fields_of(family)] for family in Family},
    "all": list(CATALOG),
}


def measure(action: Callable[[], object], *, runs: int, budget_s: float) -> list[float]:
    """Wall-clock milliseconds of ``action``: up to ``runs`` runs within ``budget_s``."""
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < runs and (not times or time.perf_counter() < deadline):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return times


def summary(times: list[float]) -> dict[str, float]:
    """Median, p95 and run count."""
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": statistics.median(ordered), "p95_ms": p95, "runs": len(ordered)}


def main() -> int:
    """Run every case and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="total time bound")
    parser.add_argument("--runs", type=int, default=200, help="most runs per case")
    parser.add_argument(
        "--recording",
        type=Path,
        default=REPO / "tests" / "fixtures" / "collectors" / "linux",
        help="recorded machine to replay",
    )
    args = parser.parse_args()

    recorded, _ = load_recording(args.recording)
    contexts: dict[str, CollectionContext] = {
        "recording": recorded,
        "this-machine": CollectionContext.for_this_machine(),
    }
    # One share per case plus the baseline; each case gets at least one run regardless.
    share = args.seconds / (len(contexts) * len(CASES) + 1)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for target, ctx in contexts.items():
        results[target] = {}
        for case, wanted in CASES.items():
            times = measure(
                lambda c=ctx, w=wanted: collect_signals(c, w),  # type: ignore[misc]
                runs=args.runs,
                budget_s=share,
            )
            results[target][case] = summary(times)
            figures = results[target][case]
            print(
                f"{target:13} {case:9} median {figures['median_ms']:8.3f} ms"
                f"  p95 {figures['p95_ms']:8.3f} ms  ({figures['runs']:.0f} runs)"
            )

    # The unit of work collectors mostly do: open and read one small file.
    small_file = REPO / "pyproject.toml"
    baseline = summary(measure(small_file.read_bytes, runs=args.runs, budget_s=share / 2))
    full = collect_signals(recorded, CASES["all"])
    dumps = summary(measure(lambda: json.dumps(full), runs=args.runs, budget_s=share / 2))
    print(f"{'baseline':13} {'read-file':9} median {baseline['median_ms']:8.3f} ms")
    print(f"{'baseline':13} {'json.dumps':9} median {dumps['median_ms']:8.3f} ms")
    total = results["this-machine"]["all"]["median_ms"]
    ratio = total / baseline["median_ms"] if baseline["median_ms"] else float("inf")
    within = results["this-machine"]["all"]["p95_ms"] < TARGET_MS
    print(f"all families on this machine: {total:.3f} ms median (target < {TARGET_MS:.0f} ms)")
    print(
        json.dumps(
            {
                "bench": "collect",
                "results": results,
                "baseline": {"what": "read one small file", **baseline},
                "json_dumps_recorded_signals": dumps,
                "ratio_all_to_baseline": ratio,
                "target_ms": TARGET_MS,
                "within_target": within,
            },
            sort_keys=True,
        )
    )
    return 0 if within else 1


if __name__ == "__main__":
    raise SystemExit(main())
