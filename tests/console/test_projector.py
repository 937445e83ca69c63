"""Under ``serve`` the fleet projection runs in a child process: it applies what the server
records, and it never outlives the server, even one killed with SIGKILL."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import psutil

from server.alerts.worker import PROJECTOR_NAME, AuditFollower
from server.metrics import Metrics
from tests.devices import TestDevice
from tests.servers import VerifierProcess


def _projectors(server: psutil.Process) -> list[psutil.Process]:
    """The server's projector children (a spawned one comes with multiprocessing's
    resource tracker, which is not one)."""
    return [p for p in server.children() if "resource_tracker" not in " ".join(p.cmdline())]


def _fleet_row(database: Path, device_id: str) -> tuple[str, int] | None:
    with sqlite3.connect(database) as db:
        row = db.execute(
            "SELECT last_decision, attestations FROM fleet_devices WHERE device_id = ?",
            (device_id,),
        ).fetchone()
    return None if row is None else (str(row[0]), int(row[1]))


def test_the_projector_applies_attestations_and_dies_with_its_server(
    verifier: VerifierProcess, tmp_path: Path
) -> None:
    assert verifier.process is not None
    server = psutil.Process(verifier.process.pid)
    children = _projectors(server)
    assert len(children) == 1, "serve starts exactly one projector process"
    projector = children[0]

    device = TestDevice.enroll(verifier.url, verifier.enroll_token(), tmp_path / "key.json")
    assert device.attest(device.evidence()).status_code == 200
    database = verifier.data_dir / "envattest.db"
    deadline = time.monotonic() + 15
    while _fleet_row(database, device.device_id) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _fleet_row(database, device.device_id) == ("allow", 1)
    if Path("/proc/self/comm").exists():  # Linux: as ps, top and bench/verifier.py find it
        assert projector.name() == PROJECTOR_NAME

    server.kill()  # no chance to stop its child
    server.wait(timeout=10)
    gone, alive = psutil.wait_procs([projector], timeout=10)
    assert not alive  # it noticed its parent is gone
    assert gone == [projector]


def test_a_killed_projector_is_replaced_and_projection_goes_on(
    verifier: VerifierProcess, tmp_path: Path
) -> None:
    assert verifier.process is not None
    server = psutil.Process(verifier.process.pid)
    (first,) = _projectors(server)
    first.kill()
    first.wait(timeout=10)
    deadline = time.monotonic() + 20
    while not _projectors(server) and time.monotonic() < deadline:
        time.sleep(0.2)
    replacements = _projectors(server)
    assert len(replacements) == 1
    assert replacements[0].pid != first.pid

    device = TestDevice.enroll(verifier.url, verifier.enroll_token(), tmp_path / "key.json")
    assert device.attest(device.evidence()).status_code == 200
    database = verifier.data_dir / "envattest.db"
    while _fleet_row(database, device.device_id) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _fleet_row(database, device.device_id) == ("allow", 1)
    assert "fleet projection process exited" in verifier.log_path.read_text()


class _Sender:
    runs = 0

    def run_once(self) -> None:
        self.runs += 1


class _NoProjection:
    def catch_up(self, *, limit: int, now: int) -> int:
        raise AssertionError("serve's follower must leave the records to the projector")


def test_serves_follower_only_delivers_alerts() -> None:
    sender = _Sender()
    follower = AuditFollower(
        projection=_NoProjection(),  # type: ignore[arg-type]
        sender=sender,  # type: ignore[arg-type]
        queries=None,  # type: ignore[arg-type]
        metrics=Metrics(),
        project=False,
    )
    follower._gauges_at = float("inf")  # gauges are not what this test is about
    follower.tick()
    assert sender.runs == 1
