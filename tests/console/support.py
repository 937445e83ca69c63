"""A real console process and a seeded verifier data directory, for the console's tests."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from server.store.sql import make_engine
from tests._support import free_port
from tests.console.fleet import FleetSpec, SeededFleet, seed_fleet
from tests.servers import REPO, clean_env, init_verifier, run_server_cli

PASSWORD = "correct horse battery staple"
# fits the catalog's shapes (a tunnel interface name, <= 64 characters), yet is markup
HOSTILE = "<img src=x onerror=alert(1)><script>document.title=1</script>"


@dataclass
class ConsoleProcess:
    """A running ``envattest-server console``."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """Where its output goes."""
        return self.data_dir.parent / f"console-{self.port}.log"

    def start(self) -> ConsoleProcess:
        """Start and wait until the sign-in page answers."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "server",
                    "console",
                    "--data-dir",
                    str(self.data_dir),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=clean_env(),
                cwd=REPO,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"console exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/login", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"console did not start: {self.log_path.read_text()}")

    def stop(self) -> None:
        """Terminate and wait."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def sign_in(self, username: str = "alice", password: str = PASSWORD) -> httpx.Client:
        """An HTTP client holding a session (raises if sign-in fails)."""
        client = httpx.Client(base_url=self.url, timeout=30)
        answer = client.post("/login", data=login_form(client, username, password))
        assert answer.status_code == 303, answer.text
        return client


def login_form(client: httpx.Client, username: str, password: str) -> dict[str, str]:
    """Fetch the sign-in page (sets the CSRF cookie) and fill its form."""
    page = client.get("/login").text
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, page
    return {"username": username, "password": password, "csrf": match.group(1)}


def make_fleet_dir(
    root: Path, spec: FleetSpec, *, server_toml: str = ""
) -> tuple[Path, SeededFleet]:
    """An initialised data directory holding a seeded fleet and the console user alice."""
    verifier = init_verifier(root / "data")
    data_dir = verifier.data_dir
    if server_toml:
        with (data_dir / "server.toml").open("a", encoding="utf-8") as out:
            out.write("\n" + server_toml)
    engine = make_engine(f"sqlite:///{data_dir / 'envattest.db'}")
    try:
        fleet = seed_fleet(engine, spec)
    finally:
        engine.dispose()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "server",
            "console-user",
            "create",
            "alice",
            "--data-dir",
            str(data_dir),
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=REPO,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return data_dir, fleet


def sign_checkpoint(data_dir: Path) -> None:
    """``envattest-server audit checkpoint``: what makes a verify run conclusive."""
    run_server_cli(["audit", "checkpoint", "--data-dir", str(data_dir)])


__all__ = [
    "HOSTILE",
    "PASSWORD",
    "ConsoleProcess",
    "login_form",
    "make_fleet_dir",
    "run_server_cli",
]
