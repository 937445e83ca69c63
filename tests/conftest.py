"""Fixtures shared by every test package."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import REPO, VerifierProcess, clean_env, init_verifier


@pytest.fixture
def verifier(tmp_path: Path) -> Iterator[VerifierProcess]:
    """A fresh verifier (SQLite) running on a loopback port."""
    server = init_verifier(tmp_path / "verifier").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def shared_verifier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VerifierProcess]:
    """One verifier for a whole module of tests that do not interfere."""
    server = init_verifier(tmp_path_factory.mktemp("shared") / "verifier").start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class AgentRun:
    """Result of one agent CLI run."""

    code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class AgentCli:
    """Runs the real ``envattest`` CLI with a fixture home and a clean environment."""

    home: Path
    user_home: Path
    project: Path

    def __call__(self, *args: str, stdin: str | None = None, **env: str) -> AgentRun:
        """Run ``envattest --home HOME ARGS``."""
        done = subprocess.run(
            [sys.executable, "-m", "agent", "--home", str(self.home), *args],
            capture_output=True,
            text=True,
            input=stdin,
            env=clean_env(HOME=str(self.user_home), **env),
            cwd=self.project,
            check=False,
            timeout=60,
        )
        return AgentRun(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def agent_cli(tmp_path: Path) -> AgentCli:
    """The agent CLI over a fixture user home (empty) and project directory."""
    user_home = tmp_path / "user"
    project = tmp_path / "project"
    user_home.mkdir()
    project.mkdir()
    return AgentCli(home=tmp_path / "agent-state", user_home=user_home, project=project)


__all__ = ["REPO", "AgentCli", "AgentRun"]
