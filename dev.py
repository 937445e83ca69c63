#!/usr/bin/env python3
"""Project tasks on a fresh machine with only Python 3.11+.

    python3 dev.py demo   a local verifier (SQLite), an agent enrolling with the exact
                          manifest hash, attesting, printing decision and token
    python3 dev.py test   the test suite

Both create ``.venv`` and install the project into it on first use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
STAMP = VENV / ".envattest-installed"


def _has_libtss2() -> bool:
    if shutil.which("pkg-config") is None:
        return False
    probe = subprocess.run(["pkg-config", "--exists", "tss2-esys"], check=False)
    return probe.returncode == 0


def ensure_venv() -> None:
    """Create the virtual environment and install the project with its extras."""
    if sys.version_info < (3, 11):  # noqa: UP036 (runs before the venv exists)
        sys.exit("envattest needs Python 3.11 or newer")
    pyproject = ROOT / "pyproject.toml"
    if STAMP.exists() and STAMP.stat().st_mtime >= pyproject.stat().st_mtime:
        return
    if not PYTHON.exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    extras = "server,postgres,dev,litellm" + (",tpm" if _has_libtss2() else "")
    print(
        f"installing envattest[{extras}] into .venv (first run only; a minute or two, "
        "pip shows each package) ...",
        flush=True,
    )
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.run([*pip, "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f".[{extras}]"], check=True, cwd=ROOT)
    print("installed; next runs start at once", flush=True)
    STAMP.touch()


def main(argv: list[str]) -> int:
    """Dispatch the task."""
    if not argv or argv[0] not in ("demo", "test"):
        print(__doc__)
        return 2
    ensure_venv()
    if argv[0] == "demo":
        return subprocess.call([str(PYTHON), str(ROOT / "tools" / "demo.py"), *argv[1:]])
    return subprocess.call([str(PYTHON), "-m", "pytest", *argv[1:]], cwd=ROOT)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
