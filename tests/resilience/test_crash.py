"""kill -9 under load: what a client was given survives, and nothing can be replayed."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from attest.b64 import b64url_decode
from server.audit import verify_chain
from server.store.sql import SqlStore, make_engine
from tests.devices import TestDevice
from tests.resilience.conftest import unlimited_verifier

CLIENTS = 4
LOAD_S = 2.0


def _jti(token: str) -> str:
    jti: str = json.loads(b64url_decode(token.split(".")[1]))["jti"]
    return jti


@pytest.mark.slow
def test_kill_9_under_load_keeps_every_issued_token_audited(tmp_path: Path) -> None:
    server = unlimited_verifier(tmp_path / "verifier").start()
    token = server.enroll_token(uses=CLIENTS)
    devices = [
        TestDevice.enroll(server.url, token, tmp_path / f"key-{i}.pem") for i in range(CLIENTS)
    ]
    granted: list[tuple[TestDevice, str, str]] = []  # device, evidence, access token
    lock = threading.Lock()
    stop = threading.Event()

    def attest_until_killed(device: TestDevice) -> None:
        with httpx.Client(base_url=server.url, timeout=5) as http:
            for _ in range(10_000):  # bounded; the kill ends it long before
                if stop.is_set():
                    return
                try:
                    nonce = http.post("/v1/challenge", json={"device_id": device.device_id})
                    evidence = device.evidence(nonce.json()["nonce"])
                    answer = http.post(
                        "/v1/attest",
                        content=evidence,
                        headers={"Content-Type": "application/eat+jwt"},
                    )
                except (httpx.HTTPError, ValueError, KeyError):
                    return  # the server is gone
                if answer.status_code == 200:
                    with lock:
                        granted.append((device, evidence, answer.json()["access_token"]))

    threads = [threading.Thread(target=attest_until_killed, args=(d,)) for d in devices]
    try:
        for thread in threads:
            thread.start()
        time.sleep(LOAD_S)
        server.kill()
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
        assert granted, "no attestation succeeded before the kill"

        server.start()
        url = f"sqlite:///{server.data_dir / 'envattest.db'}"
        records = SqlStore(make_engine(url)).audit_records()
        audited = {r.data.get("jti") for r in records if r.data}
        missing = [_jti(t) for _, _, t in granted if _jti(t) not in audited]
        assert not missing, f"tokens issued without an audit record: {missing}"
        verify_chain(records)
        for device, evidence, _ in granted[-10:]:  # the newest: closest to the crash
            assert device.attest(evidence).status_code == 401
        with sqlite3.connect(server.data_dir / "envattest.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert httpx.get(f"{server.url}/readyz").status_code == 200
    finally:
        stop.set()
        server.stop()
