"""Fixtures for the resilience tests: verifiers without rate limits (the tests drive many
requests from one loopback address on purpose)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import VerifierProcess, init_verifier


def unlimited_verifier(data_dir: Path) -> VerifierProcess:
    """An initialised, unstarted verifier whose per-IP and per-device rate limits are off."""
    handle = init_verifier(data_dir)
    config = handle.data_dir / "server.toml"
    config.write_text(
        config.read_text() + "rate_limit_per_minute = 0\ndevice_rate_limit_per_minute = 0\n"
    )
    return handle


@pytest.fixture(scope="module")
def open_verifier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VerifierProcess]:
    """One running verifier without rate limits for a whole module."""
    server = unlimited_verifier(tmp_path_factory.mktemp("resilience") / "verifier").start()
    try:
        yield server
    finally:
        server.stop()
