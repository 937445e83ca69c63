"""``python3 dev.py demo`` reads like the README: the real command names, the whole manifest
hash as it is passed to ``--accept-manifest``, the rule results, the token once."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.servers import REPO, clean_env

JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")


def test_the_demo_reads_like_the_readme() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "tools" / "demo.py")],
        capture_output=True, text=True, env=clean_env(HOME="/nonexistent"), timeout=240,
        check=False,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    manifest = re.search(r"^manifest SHA-256: ([0-9a-f]{64})$", out, flags=re.MULTILINE)
    assert manifest is not None, out
    assert f"--accept-manifest {manifest.group(1)} " in out
    assert "$ envattest-server init " in out
    assert "$ envattest --home $DEMO/agent init " in out
    assert "python -m" not in out
    assert "-m server" not in out
    assert len(JWT.findall(out)) == 1
    assert re.search(r"^  pass  key_class ", out, flags=re.MULTILINE), out
    assert "Traceback" not in out
    assert not [line for line in out.splitlines() if line.startswith("envattest:")]
