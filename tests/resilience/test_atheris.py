"""A short coverage-guided run of the untrusted-bytes parsers (atheris), seeded with every
vector in tests/vectors/evidence and tests/vectors/json, when atheris is installed.

``ENVATTEST_ATHERIS_SECONDS`` sets the run's length (default 5)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import REPO, clean_env

SCRIPT = Path(__file__).with_name("fuzz_evidence_atheris.py")
SECONDS = os.environ.get("ENVATTEST_ATHERIS_SECONDS", "5")
SEEDS = [*sorted((REPO / "tests/vectors/evidence").glob("*.txt")),
         *sorted((REPO / "tests/vectors/json").glob("*.json"))]  # fmt: skip


def test_atheris_finds_no_crash_in_the_parsers(tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris is not installed (Linux dev extra)")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for seed in SEEDS:
        shutil.copy(seed, corpus / seed.name)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), f"-max_total_time={SECONDS}", "-rss_limit_mb=1024",
         "-max_len=70000", f"-artifact_prefix={tmp_path}/", str(corpus)],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=REPO,
        check=False,
        timeout=int(SECONDS) + 120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done" in done.stderr
    # every seed was read and run before fuzzing started
    seeded = re.search(r"INITED cov: (\d+) .*corp: (\d+)", done.stderr)
    assert seeded is not None, done.stderr[-3000:]
    assert int(seeded.group(2)) >= len(SEEDS) // 2  # libFuzzer keeps only seeds adding coverage
    final = re.findall(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+)", done.stderr)[-1]
    print(f"atheris: {final[0]} runs, cov {final[1]}, ft {final[2]}, seeds {len(SEEDS)}")
