"""A real verifier process on a loopback port, for end-to-end tests and benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests._support import free_port

REPO = Path(__file__).resolve().parents[1]


def clean_env(**extra: str) -> dict[str, str]:
    """A minimal environment: no proxies, no API base URLs, no developer settings."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(REPO),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.update(extra)
    return env


def run_server_cli(args: Sequence[str], *, env: dict[str, str] | None = None) -> str:
    """Run ``envattest-server ARGS`` and return stdout; raise with stderr on failure."""
    done = subprocess.run(
        [sys.executable, "-m", "server", *args],
        capture_output=True,
        text=True,
        env=env or clean_env(),
        cwd=REPO,
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        raise AssertionError(f"envattest-server {' '.join(args)} failed: {done.stderr}")
    return done.stdout


@dataclass
class VerifierProcess:
    """A running ``envattest-server serve``."""

    data_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, *extra: str, env: dict[str, str] | None = None) -> VerifierProcess:
        """Start and wait until /healthz answers."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "server", "serve",
                    "--data-dir", str(self.data_dir),
                    "--host", "127.0.0.1", "--port", str(self.port),
                    "--log-level", "warning", *extra,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env or clean_env(),
                cwd=REPO,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"verifier exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError(f"verifier did not start: {self.log_path.read_text()}")

    def stop(self) -> None:
        """Terminate and wait."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """kill -9, for crash tests."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def enroll_token(self, *, uses: int = 1, expires_in: int = 3600) -> str:
        """A fresh enrollment token from the admin CLI."""
        return run_server_cli(
            [
                "enroll-token", "create", "--data-dir", str(self.data_dir),
                "--uses", str(uses), "--expires-in", str(expires_in),
            ]
        ).strip()  # fmt: skip

    def gateway_credential(self, name: str) -> str:
        """A fresh gateway credential (``gw_...``) from the admin CLI."""
        out = run_server_cli(
            ["gateway-credential", "create", "--data-dir", str(self.data_dir), "--name", name]
        )
        return out.strip().split()[0]


def init_verifier(data_dir: Path, *, database_url: str = "") -> VerifierProcess:
    """``envattest-server init`` into ``data_dir`` and return an unstarted process handle."""
    args = ["init", "--data-dir", str(data_dir), "--issuer", "https://verifier.test"]
    if database_url:
        args += ["--database-url", database_url]
    run_server_cli(args)
    return VerifierProcess(data_dir=data_dir, port=free_port())


@contextmanager
def running_replicas(first: VerifierProcess) -> Iterator[tuple[VerifierProcess, VerifierProcess]]:
    """``first`` and a second process on the same data directory (and database), started."""
    second = VerifierProcess(data_dir=first.data_dir, port=free_port())
    try:
        first.start()
        second.start()
        yield first, second
    finally:
        first.stop()
        second.stop()
