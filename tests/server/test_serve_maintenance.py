"""``serve`` maintenance: expired nonces deleted and audit checkpoints signed on their
intervals (and a checkpoint at start and stop); Ctrl-C stops it with no traceback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from server.maintenance import Maintenance, Task
from server.nonces import PURGE_MARGIN_S
from server.store.sql import SqlStore, make_engine
from tests.servers import REPO, clean_env, init_verifier


def test_tasks_run_at_start_on_their_interval_and_at_stop() -> None:
    runs: list[str] = []
    fast = Task("fast", 1, lambda: runs.append("fast") or "ok", at_start=True, at_stop=True)
    never = Task("off", 0, lambda: runs.append("off") or "ok", at_start=True)
    timers = Maintenance([fast, never], clock=time.monotonic)
    timers.start()
    assert runs == ["fast"]
    time.sleep(1.3)
    timers.stop()
    assert runs == ["fast", "fast", "fast"]  # start, one interval, stop; "off" never


def test_serve_purges_nonces_checkpoints_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    handle = init_verifier(tmp_path / "verifier")
    config = handle.data_dir / "server.toml"
    config.write_text(
        config.read_text() + "nonce_purge_interval_s = 1\naudit_checkpoint_interval_s = 1\n"
    )
    store = SqlStore(make_engine(f"sqlite:///{handle.data_dir / 'envattest.db'}"))
    # a nonce spent long ago, past its expiry and the purge's margin for replica clocks
    expired = int(time.time()) - 10 - PURGE_MARGIN_S
    store.spend_nonce(
        "stale", binding="device:dev_x", expires_at=expired, now=expired - 60, audit=None
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "server", "serve", "--data-dir", str(handle.data_dir),
                "--port", str(handle.port),
            ],
            stdout=out, stderr=subprocess.STDOUT, env=clean_env(), cwd=REPO,
            # a terminal's Ctrl-C: SIGINT with Python's default handler (not inherited SIG_IGN)
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{handle.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        time.sleep(2.5)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert code == 0, text
    assert "Traceback" not in text
    assert text.strip().splitlines()[-1].endswith("envattest verifier stopped")
    assert "1 expired nonces deleted" in text
    assert text.count("audit checkpoint: signed") >= 3  # start, interval, stop
    assert store.checkpoints()
    witness = json.loads((handle.data_dir / "audit-checkpoint.json").read_text())
    assert witness["count"] == store.audit_head()[0]
    store.engine.dispose()


def test_serve_with_two_workers_spends_each_nonce_once(tmp_path: Path) -> None:
    from tests.devices import TestDevice

    handle = init_verifier(tmp_path / "verifier")
    handle.start("--workers", "2")
    try:
        assert handle.process is not None
        import psutil

        workers = [
            p
            for p in psutil.Process(handle.process.pid).children()
            if "spawn_main" in " ".join(p.cmdline())
        ]
        assert len(workers) == 2
        device = TestDevice.enroll(handle.url, handle.enroll_token(), tmp_path / "key.pem")
        evidence = device.evidence()
        # the same evidence on fresh connections lands on either worker: one allow only
        answers = [device.attest(evidence).status_code for _ in range(4)]
        assert sorted(answers) == [200, 401, 401, 401]
    finally:
        handle.stop()
    store = SqlStore(make_engine(f"sqlite:///{handle.data_dir / 'envattest.db'}"))
    rejected = store.audit_records(decision="reject")
    assert [r.data["reason"] for r in rejected if r.data] == ["nonce already-used"] * 3
    store.engine.dispose()
