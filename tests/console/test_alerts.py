"""Alerts end to end: a real verifier process with webhooks in server.toml, devices speaking
protocol v1, a local receiver that gets Slack and signed JSON, and a receiver that is down."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.alerts.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests._support import free_port
from tests.console.support import PASSWORD, ConsoleProcess
from tests.console.webhook import WebhookReceiver
from tests.devices import TestDevice, default_signals
from tests.servers import REPO, VerifierProcess, clean_env, init_verifier

SECRET = b"0123456789abcdef0123456789abcdef"


def _wait(check: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver().start()
    yield hook
    hook.stop()


@pytest.fixture
def verifier(tmp_path: Path, receiver: WebhookReceiver) -> Iterator[VerifierProcess]:
    process = init_verifier(tmp_path / "data")
    shutil.copy(
        REPO / "server/examples/policy-relay-detection.toml", process.data_dir / "policy.toml"
    )
    (process.data_dir / "hook.key").write_bytes(SECRET)
    down = f"http://127.0.0.1:{free_port()}/nobody-listens"
    with (process.data_dir / "server.toml").open("a", encoding="utf-8") as out:
        out.write(f"""
[alerts]
allow_run = 2
max_attempts = 3
retry_base_s = 1
retry_max_s = 2

[[alerts.webhook]]
name = "slack"
url = "{receiver.url}/slack"
format = "slack"

[[alerts.webhook]]
name = "siem"
url = "{receiver.url}/siem"
format = "signed"
secret_file = "hook.key"

[[alerts.webhook]]
name = "down"
url = "{down}"
format = "slack"
""")
    process.start()
    yield process
    process.stop()


def _signals(device: TestDevice, zone: str, host: str, cls: str) -> dict[str, Any]:
    signals = default_signals(device.manifest)
    signals["timezone.iana"] = zone
    signals["baseurl.tools"] = [
        {
            "source": "claude-code:user",
            "provider": "anthropic",
            "scheme": "https",
            "host": host,
            "port": None,
            "classification": cls,
        }
    ]
    for clean in ("proxy.env", "proxy.tools", "proxy.tunnels", "proxy.errors", "baseurl.errors"):
        if clean in signals:
            signals[clean] = []
    return signals


def test_changes_and_a_deny_after_allows_reach_the_webhooks(
    verifier: VerifierProcess, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    device = TestDevice.enroll(verifier.url, verifier.enroll_token(), tmp_path / "key.json")
    for _ in range(2):
        ok = device.attest(
            device.evidence(
                signals=_signals(device, "Europe/Berlin", "api.anthropic.com", "official")
            )
        )
        assert ok.status_code == 200, ok.text
    denied = device.attest(
        device.evidence(signals=_signals(device, "Asia/Tokyo", "relay.example", "custom"))
    )
    assert denied.status_code == 403

    kinds = {"deny-after-allows", "timezone-change", "baseurl-class-change"}
    _wait(lambda: len([r for r in receiver.received if r.path == "/siem"]) >= 3)
    signed = [r for r in receiver.received if r.path == "/siem"]
    docs = [json.loads(r.body) for r in signed]
    assert {d["kind"] for d in docs} == kinds
    assert all(d["device_id"] == device.device_id for d in docs)
    for r in signed:  # the receiver can check each body came from the verifier
        ts = r.headers[TIMESTAMP_HEADER]
        mac = hmac.new(SECRET, f"{ts}.".encode() + r.body, hashlib.sha256).hexdigest()
        assert r.headers[SIGNATURE_HEADER] == f"sha256={mac}"
    change = next(d for d in docs if d["kind"] == "baseurl-class-change")
    assert "from official api.anthropic.com to custom relay.example" in change["summary"]

    _wait(lambda: len([r for r in receiver.received if r.path == "/slack"]) >= 3)
    slack = [json.loads(r.body) for r in receiver.received if r.path == "/slack"]
    assert all(set(doc) == {"text"} for doc in slack)
    assert any("time zone changed from Europe/Berlin to Asia/Tokyo" in doc["text"] for doc in slack)


def test_a_receiver_that_is_down_gets_retries_then_the_failure_is_visible(
    verifier: VerifierProcess, tmp_path: Path
) -> None:
    device = TestDevice.enroll(verifier.url, verifier.enroll_token(), tmp_path / "key.json")
    for zone in ("Europe/Berlin", "Europe/Paris"):
        device.attest(
            device.evidence(signals=_signals(device, zone, "api.anthropic.com", "official"))
        )

    def failed() -> bool:
        metrics = httpx.get(f"{verifier.url}/metrics").text
        return 'envattest_alert_deliveries_total{result="failed",target="down"} 1.0' in metrics

    _wait(failed, seconds=40)
    metrics = httpx.get(f"{verifier.url}/metrics").text
    assert 'envattest_alert_deliveries_total{result="retry",target="down"} 2.0' in metrics
    assert 'envattest_alert_deliveries_total{result="delivered",target="slack"} 1.0' in metrics
    log = verifier.log_path.read_text()
    assert "attempt 3 failed" in log
    assert "giving up" in log


def test_a_verify_failure_in_the_cli_or_the_console_is_alerted(
    verifier: VerifierProcess, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    TestDevice.enroll(verifier.url, verifier.enroll_token(), tmp_path / "key.json")
    with sqlite3.connect(verifier.data_dir / "envattest.db") as db:  # an insider edits the log
        db.execute("UPDATE audit_log SET decision = 'deny' WHERE seq = 2")
    done = subprocess.run(
        [sys.executable, "-m", "server", "audit", "verify", "--data-dir", str(verifier.data_dir)],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=REPO,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert "BROKEN at record 2" in done.stderr

    subprocess.run(
        [
            sys.executable,
            "-m",
            "server",
            "console-user",
            "create",
            "alice",
            "--data-dir",
            str(verifier.data_dir),
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        text=True,
        env=clean_env(),
        cwd=REPO,
        check=True,
        timeout=60,
    )
    console = ConsoleProcess(verifier.data_dir).start()
    try:
        with closing(console.sign_in()) as client:
            token = client.get("/audit").text.split('name="csrf" value="')[1].split('"')[0]
            page = client.post("/audit/verify", data={"csrf": token}, follow_redirects=True)
        assert "BROKEN</span>" in page.text
        assert "audit record 2" in page.text
    finally:
        console.stop()

    def both_alerted() -> bool:
        docs = [json.loads(r.body) for r in receiver.received if r.path == "/siem"]
        summaries = [d["summary"] for d in docs if d["kind"] == "audit-verify-failed"]
        return any("by audit verify" in s for s in summaries) and any(
            "by console user alice" in s for s in summaries
        )

    _wait(both_alerted)
