"""Mutation testing: the bounded run kills every check mutant; survivors are classified."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.servers import REPO, clean_env
from tools.mutation import classify


@pytest.mark.parametrize(
    ("removed", "added", "kind"),
    [
        ('raise FormatError("bad")', "raise FormatError(None)", "message"),
        ('"update the agent"', '"XXupdate the agentXX"', "message"),
        ('x.encode("ascii")', 'x.encode("ASCII")', "message"),
        ('int.from_bytes(raw, "big")', "int.from_bytes(raw, )", "equivalent"),
        (
            'r.to_bytes(32, "big") + s.to_bytes(32, "big")',
            'r.to_bytes(32, ) + s.to_bytes(32, "big")',
            "equivalent",
        ),
        ("if len(proof) > LIMIT:", "if len(proof) >= LIMIT:", "check"),
        ('mac = key + b"\\x00"', 'mac = key + b"XX\\x00XX"', "check"),
        ("if not ok:", "if ok:", "check"),
    ],
)
def test_survivors_are_classified(removed: str, added: str, kind: str) -> None:
    assert classify([removed], [added]) == kind


def test_a_removed_line_is_a_check() -> None:
    assert classify(["check(x)"], []) == "check"


@pytest.mark.slow
def test_bounded_mutation_run_kills_every_check_mutant() -> None:
    if os.environ.get("CI") != "true" and os.environ.get("ENVATTEST_MUTATION") != "1":
        pytest.skip("a few minutes of mutation testing: runs in CI, or set ENVATTEST_MUTATION=1")
    done = subprocess.run(
        [sys.executable, "tools/mutation.py"],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    summary = [line for line in done.stdout.splitlines() if not line.startswith(("\u2800", "🎉"))]
    assert done.returncode == 0, "\n".join(summary[-40:]) + done.stderr[-2000:]


def test_an_unused_render_width_default_is_equivalent() -> None:
    old = "width = max((len(r.rule) for r in decision.results), default=0)"
    assert classify([old], [old.replace("default=0", "default=1")]) == "equivalent"
    assert classify([old], [old.replace("default=0", "default=None")]) == "equivalent"
    assert classify([old], [old.replace(", default=0", "")]) == "check"
