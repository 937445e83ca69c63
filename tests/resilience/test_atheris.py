"""A short coverage-guided run of the evidence parser (atheris), when atheris is installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import REPO, clean_env

SCRIPT = Path(__file__).with_name("fuzz_evidence_atheris.py")
SECONDS = os.environ.get("ENVATTEST_ATHERIS_SECONDS", "5")


def test_atheris_finds_no_crash_in_the_evidence_parser(tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris is not installed (Linux dev extra)")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), f"-max_total_time={SECONDS}", "-rss_limit_mb=1024",
         f"-artifact_prefix={tmp_path}/"],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=REPO,
        check=False,
        timeout=int(SECONDS) + 60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done" in done.stderr
