"""The PyInstaller agent binary, not the Python sources: contents, size, and the whole path.

One build per module (or a ``dist/envattest`` newer than every source it is built from). Locally
a missing PyInstaller skips with a reason; under CI it fails, since CI installs the dev extra.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests._support import missing_component
from tests.agent.tlsfixtures import https_verifier
from tests.servers import REPO, VerifierProcess, init_verifier

EXE = "envattest.exe" if sys.platform == "win32" else "envattest"
BINARY = REPO / "dist" / EXE
MAX_SIZE = 40 * 1024 * 1024
BUILD_INPUTS = (
    "agent", "attest", "pyproject.toml",
    "packaging/envattest.spec", "packaging/entry.py", "packaging/build.sh",
)  # fmt: skip
# The verifier's stack and dev tools: none of it may ship in the desktop binary.
FORBIDDEN = {
    "server", "fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "pydantic",
    "pydantic_core", "jwt", "psycopg", "prometheus_client", "jwcrypto", "pytest", "hypothesis",
    "tests",
}  # fmt: skip
REQUIRED = {"agent", "attest", "httpx", "truststore", "cryptography", "psutil", "tzlocal"}


def _newest_input_mtime() -> float:
    newest = 0.0
    for name in BUILD_INPUTS:
        path = REPO / name
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        newest = max([newest, *(f.stat().st_mtime for f in files if "__pycache__" not in f.parts)])
    return newest


@pytest.fixture(scope="module")
def binary() -> Path:
    """dist/envattest, rebuilt with packaging/build.sh unless it is newer than its sources."""
    if importlib.util.find_spec("PyInstaller") is None:
        missing_component("PyInstaller not installed; pip install -e '.[dev]'")
    if BINARY.exists() and BINARY.stat().st_mtime > _newest_input_mtime():
        return BINARY
    done = subprocess.run(
        ["bash", str(REPO / "packaging" / "build.sh")],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=900,
        env={**os.environ, "PYTHON": sys.executable},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return BINARY


@dataclass(frozen=True)
class BinaryRun:
    code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class BinaryCli:
    """Runs the binary with a fixture home, an empty environment and a directory outside the
    repository, so nothing can come from the sources."""

    binary: Path
    home: Path
    cwd: Path

    def __call__(self, *args: str) -> BinaryRun:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        env["HOME"] = str(self.cwd)
        done = subprocess.run(
            [str(self.binary), "--home", str(self.home), *args],
            capture_output=True, text=True, env=env, cwd=self.cwd, check=False, timeout=60,
        )  # fmt: skip
        return BinaryRun(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def binary_cli(binary: Path, tmp_path: Path) -> BinaryCli:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    return BinaryCli(binary, tmp_path / "state", cwd)


@pytest.fixture(scope="module")
def plain_verifier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VerifierProcess]:
    server = init_verifier(tmp_path_factory.mktemp("binary") / "verifier").start()
    try:
        yield server
    finally:
        server.stop()


def _archived_top_level_names(path: Path) -> set[str]:
    from PyInstaller.archive.readers import CArchiveReader  # type: ignore[import-untyped]

    archive = CArchiveReader(str(path))
    names = {n.replace("\\", "/").split("/")[0].split(".")[0] for n in archive.toc}
    pyz = archive.open_embedded_archive("PYZ.pyz")
    names |= {n.split(".")[0] for n in pyz.toc}
    return names


def test_binary_is_small_and_carries_no_server_dependencies(binary: Path) -> None:
    assert binary.stat().st_size < MAX_SIZE, f"{binary.stat().st_size / 2**20:.1f} MB"
    names = _archived_top_level_names(binary)
    assert names >= REQUIRED  # the listing is real: it sees what must be there
    assert sorted(FORBIDDEN & names) == []


def test_binary_reports_the_project_version(binary_cli: BinaryCli) -> None:
    import attest

    run = binary_cli("--version")
    assert run.stdout.strip() == f"envattest {attest.__version__}"


def test_binary_enrolls_attests_and_serves_the_cached_token(
    binary_cli: BinaryCli, plain_verifier: VerifierProcess
) -> None:
    manifest_hash = httpx.get(f"{plain_verifier.url}/v1/manifest").headers["ETag"].strip('"')
    init = binary_cli(
        "init", "--server", plain_verifier.url, "--enroll-token", plain_verifier.enroll_token(),
        "--accept-manifest", manifest_hash, "--key", "software",
    )  # fmt: skip
    assert init.code == 0, init.stderr
    assert "timezone.iana" in init.stderr

    attest = binary_cli("attest", "--json")
    assert attest.code == 0, attest.stderr + attest.stdout
    decision = json.loads(attest.stdout)
    assert decision["decision"] == "allow"

    token = binary_cli("token")
    assert (token.code, token.stdout) == (0, decision["access_token"] + "\n")

    doctor = binary_cli("doctor")
    assert doctor.code == 0, doctor.stdout

    passed = binary_cli(
        "exec", "--env-var", "OPENAI_API_KEY", "--", "sh", "-c", 'test "$OPENAI_API_KEY" = "$0"',
        decision["access_token"],
    )  # fmt: skip
    assert passed.code == 0, passed.stderr


def test_binary_trusts_a_private_ca_only_when_given_ca_file(
    binary_cli: BinaryCli, tmp_path: Path
) -> None:
    server = https_verifier(tmp_path / "tls").start()
    try:
        args = (
            "init", "--server", server.url, "--enroll-token", server.enroll_token(uses=2),
            "--accept-manifest", server.manifest_hash(), "--key", "software",
        )  # fmt: skip
        refused = binary_cli(*args)
        assert refused.code == 1
        assert "not trusted" in refused.stderr
        assert "--ca-file" in refused.stderr
        enrolled = binary_cli(*args, "--ca-file", str(server.ca.ca_cert))
        assert enrolled.code == 0, enrolled.stderr
        assert binary_cli("attest").code == 0
    finally:
        server.stop()
