"""Faults: a locked database, a full disk under the agent's state."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.errors import StateError
from agent.home import AgentHome, ConsentRecord
from attest.keys.software import SoftwareKey
from tests.devices import EVIDENCE, TestDevice
from tests.servers import VerifierProcess

BUSY_TIMEOUT_S = 5  # the verifier's SQLite busy_timeout


@pytest.mark.slow
def test_locked_database_answers_503_then_recovers(
    verifier: VerifierProcess, tmp_path: Path
) -> None:
    device = TestDevice.enroll(verifier.url, verifier.enroll_token(), tmp_path / "key.pem")
    evidence = device.evidence()  # challenge before the lock: attest needs the write lock
    holder = sqlite3.connect(verifier.data_dir / "envattest.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        answer = httpx.post(  # waits out the busy timeout, longer than httpx's default 5 s
            f"{verifier.url}/v1/attest", content=evidence, headers=EVIDENCE, timeout=30
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert int(answer.headers["Retry-After"]) > 0
    assert "access_token" not in answer.text
    # once the lock is gone, the verifier works again without a restart
    again = device.attest(device.evidence())
    assert again.status_code == 200, again.text
    assert again.json()["access_token"]


CONSENT = ConsentRecord("https://verifier.test", "a" * 64, 1_700_000_000, ("timezone.iana",))
NEWER = ConsentRecord("https://verifier.test", "b" * 64, 1_700_000_100, ("timezone.iana",))


def _state(home: AgentHome) -> tuple[bytes, bytes]:
    return home.consent_path.read_bytes(), home.key_path.read_bytes()


def _assert_full_disk_is_harmless(home: AgentHome, before: tuple[bytes, bytes]) -> None:
    with pytest.raises(StateError, match="free disk space"):
        home.save_consent(NEWER)
    with pytest.raises(StateError, match="free disk space"):
        home.save_token("t" * 4096, 2_000_000_000)
    assert _state(home) == before
    assert home.consent() == CONSENT
    SoftwareKey.load(home.key_path)  # still a valid key
    assert not [p.name for p in home.root.iterdir() if p.name.startswith(".")]  # no temp files


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(
            "cannot mount a tmpfs here (needs root); test_full_disk_simulated covers the "
            f"same path by injecting ENOSPC: {done.stderr.decode().strip()}"
        )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(directory: Path) -> None:
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError, match="No space left") as full:  # noqa: PT012
            for _ in range(1024):
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    assert full.value.errno == errno.ENOSPC


def test_full_disk_on_agent_state_keeps_consent_and_key(tiny_tmpfs: Path) -> None:
    home = AgentHome(tiny_tmpfs / "state")
    home.ensure()
    SoftwareKey.create(home.key_path)
    home.save_consent(CONSENT)
    before = _state(home)
    _fill(tiny_tmpfs)
    _assert_full_disk_is_harmless(home, before)


def test_full_disk_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = AgentHome(tmp_path / "state")
    home.ensure()
    SoftwareKey.create(home.key_path)
    home.save_consent(CONSENT)
    before = _state(home)

    def no_space(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    _assert_full_disk_is_harmless(home, before)
