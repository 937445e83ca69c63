#!/usr/bin/env python3
"""Benchmark the agent binary against the source install, in one run, on one machine.

    .venv/bin/python bench/agent_binary.py [--runs N] [--seconds S] [--build]

Measures the size of ``dist/envattest`` (and ``dist/onedir/envattest`` if built), and for the
one-file binary, the one-folder binary and the source install: cold start of ``--version``,
``token`` with a valid cached token, and a full ``attest`` against a local verifier (SQLite).
The baseline is ``python -c pass`` with the same interpreter, measured in the same run, so the
ratios compare across machines. Prints a table, then one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.servers import VerifierProcess, init_verifier  # noqa: E402

ONEFILE = REPO / "dist" / ("envattest.exe" if os.name == "nt" else "envattest")
ONEDIR = (
    REPO / "dist" / "onedir" / "envattest" / ("envattest.exe" if os.name == "nt" else "envattest")
)
TARGETS = {
    "token_cached_source_median_ms": 80.0,
    "token_cached_binary_median_ms": 300.0,
    "binary_size_mb": 40.0,
}


@dataclass(frozen=True)
class Timing:
    """Wall-clock milliseconds of repeated runs of one command."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]

    def to_json(self) -> dict[str, float | int]:
        return {
            "median_ms": round(self.median, 1),
            "p95_ms": round(self.p95, 1),
            "n": len(self.samples),
        }


def _time(
    argv: Sequence[str], env: dict[str, str], cwd: Path, *, runs: int, budget_s: float
) -> Timing:
    """Run ``argv`` up to ``runs`` times within ``budget_s`` (at least min(3, runs) times)."""
    samples: list[float] = []
    deadline = time.monotonic() + budget_s
    while len(samples) < runs and (len(samples) < min(3, runs) or time.monotonic() < deadline):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, env=env, cwd=cwd, check=False)
        samples.append((time.perf_counter() - start) * 1000)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()}")
    return Timing(tuple(samples))


def _env(home: Path, *, with_sources: bool) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(home)}
    if with_sources:
        env["PYTHONPATH"] = str(REPO)
    return env


def _source_command() -> list[str]:
    """The installed console script (what a user runs), else ``python -m agent``."""
    script = Path(sys.executable).with_name("envattest.exe" if os.name == "nt" else "envattest")
    return [str(script)] if script.exists() else [sys.executable, "-m", "agent"]


def _enroll(
    command: list[str], state: Path, verifier: VerifierProcess, env: dict[str, str]
) -> None:
    import httpx

    manifest_hash = httpx.get(f"{verifier.url}/v1/manifest").headers["ETag"].strip('"')
    args = [
        *command, "--home", str(state), "init", "--server", verifier.url,
        "--enroll-token", verifier.enroll_token(), "--accept-manifest", manifest_hash,
        "--key", "software",
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"enrolling {command[0]} failed: {done.stderr}")


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per command (default 20)")
    parser.add_argument("--seconds", type=float, default=120.0, help="overall time bound")
    parser.add_argument("--build", action="store_true", help="run packaging/build.sh first")
    args = parser.parse_args(argv)
    if args.build:
        subprocess.run(["bash", str(REPO / "packaging" / "build.sh")], check=True, cwd=REPO)
    if not ONEFILE.exists():
        raise SystemExit(f"{ONEFILE} not found: run packaging/build.sh (or pass --build)")

    variants: dict[str, list[str]] = {"source": _source_command(), "binary": [str(ONEFILE)]}
    if ONEDIR.exists():
        variants["onedir"] = [str(ONEDIR)]
    commands = ("version", "token_cached", "attest")
    budget = args.seconds / (1 + len(variants) * len(commands))

    results: dict[str, dict[str, float | int]] = {}
    with tempfile.TemporaryDirectory(prefix="envattest-bench-") as tmp:
        root = Path(tmp)
        work = root / "cwd"
        work.mkdir()
        env_plain = _env(work, with_sources=False)
        results["baseline_python"] = _time(
            [sys.executable, "-c", "pass"], env_plain, work, runs=args.runs, budget_s=budget
        ).to_json()
        verifier = init_verifier(root / "verifier").start()
        try:
            for name, command in variants.items():
                env = _env(work, with_sources=name == "source")
                state = root / f"state-{name}"
                _enroll(command, state, verifier, env)
                base = [*command, "--home", str(state)]
                # one untimed attestation leaves the cached token that `token` reads; the timed
                # attestations run last, so the verifier's work after them slows nothing else
                _time([*base, "attest"], env, work, runs=1, budget_s=0)
                results[f"version_{name}"] = _time(
                    [*command, "--version"], env, work, runs=args.runs, budget_s=budget
                ).to_json()
                results[f"token_cached_{name}"] = _time(
                    [*base, "token"], env, work, runs=args.runs, budget_s=budget
                ).to_json()
                results[f"attest_{name}"] = _time(
                    [*base, "attest"], env, work, runs=args.runs, budget_s=budget
                ).to_json()
        finally:
            verifier.stop()

    baseline = float(results["baseline_python"]["median_ms"])
    sizes = {"binary_size_mb": round(ONEFILE.stat().st_size / 2**20, 2)}
    if ONEDIR.exists():
        sizes["onedir_size_mb"] = round(_dir_size(ONEDIR.parent) / 2**20, 2)
    ratios = {
        f"{key}_vs_baseline": round(float(value["median_ms"]) / baseline, 2)
        for key, value in results.items()
        if key != "baseline_python"
    }
    observed = {
        "token_cached_source_median_ms": float(results["token_cached_source"]["median_ms"]),
        "token_cached_binary_median_ms": float(results["token_cached_binary"]["median_ms"]),
        "binary_size_mb": sizes["binary_size_mb"],
    }
    targets = {key: {"target": limit, "observed": observed[key], "met": observed[key] < limit}
               for key, limit in TARGETS.items()}  # fmt: skip

    print(f"{'measurement':<24} {'median ms':>10} {'p95 ms':>10} {'n':>4} {'x baseline':>11}")
    for key, value in results.items():
        ratio = ratios.get(f"{key}_vs_baseline", 1.0)
        print(
            f"{key:<24} {value['median_ms']:>10} {value['p95_ms']:>10} {value['n']:>4} {ratio:>11}"
        )
    for key, size in sizes.items():
        print(f"{key:<24} {size:>10}")
    for key, target in targets.items():
        verdict = "met" if target["met"] else "MISSED"
        print(f"target {key} < {target['target']}: {target['observed']} ({verdict})")
    summary = {
        "bench": "agent_binary",
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "cpus": os.cpu_count(),
        "timings": results,
        "sizes": sizes,
        "ratios": ratios,
        "targets": targets,
    }
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
