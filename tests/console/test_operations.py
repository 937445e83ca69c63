"""What operators get: alert rules that promtool accepts and whose unit tests pass, a
dashboard whose every query names a metric the verifier exports, deny reasons as labels,
decision logs, /metrics on its own address, and /docs with no asset from another host."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.metrics import Metrics
from tests._support import free_port, need_tool
from tests.devices import EVIDENCE, TestDevice
from tests.servers import REPO, VerifierProcess, init_verifier

MONITORING = REPO / "packaging" / "monitoring"


def _promtool() -> str:
    return need_tool("promtool", "apt-get install prometheus (it ships promtool)")


def test_alert_rules_pass_promtool_check_and_their_unit_tests() -> None:
    promtool = _promtool()
    for args in (
        ["check", "rules", "envattest-rules.yml"],
        ["test", "rules", "envattest-rules.test.yml"],
    ):
        done = subprocess.run(
            [promtool, *args],
            cwd=MONITORING,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS" in done.stdout + done.stderr


def _exported_names() -> set[str]:
    names = set()
    for metric in Metrics().registry.collect():
        base = metric.name
        names |= {base, f"{base}_total", f"{base}_bucket", f"{base}_count", f"{base}_sum"}
    return names | {"up"}


@pytest.mark.parametrize("path", ["envattest-dashboard.json", "envattest-rules.yml"])
def test_every_query_names_an_exported_metric(path: str) -> None:
    text = (MONITORING / path).read_text()
    if path.endswith(".json"):
        dashboard = json.loads(text)
        text = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
        assert len(dashboard["panels"]) >= 10
    used = set(re.findall(r"\b(envattest_[a-z_]+|up)\{", text)) | set(
        re.findall(r"\((envattest_[a-z_]+)\[", text)
    )
    assert used, "no metric found in the queries"
    assert used <= _exported_names(), used - _exported_names()


@pytest.fixture
def verifier(tmp_path: Path) -> Iterator[VerifierProcess]:
    process = init_verifier(tmp_path / "data")
    metrics_port = free_port()
    process.metrics_port = metrics_port  # type: ignore[attr-defined]
    process.start(
        "--metrics-listen",
        f"127.0.0.1:{metrics_port}",
        "--log-level",
        "info",
        "--log-format",
        "json",
    )
    yield process
    process.stop()


def test_metrics_on_their_own_address_with_deny_reasons_and_device_gauges(
    verifier: VerifierProcess, tmp_path: Path
) -> None:
    device = TestDevice.enroll(verifier.url, verifier.enroll_token(), tmp_path / "key.json")
    withheld = device.consent(fields=("timezone.iana",))  # enforce fields withheld: deny
    body = device.evidence(consent=withheld, signals={"timezone.iana": "UTC"})
    denied = httpx.post(
        f"{verifier.url}/v1/attest",
        content=body,
        headers={**EVIDENCE, "X-Request-Id": "rid-console-1"},
    )
    assert denied.status_code == 403, denied.text
    assert denied.headers["x-request-id"] == "rid-console-1"
    forged = httpx.get(f"{verifier.url}/v1/authz", headers={"Authorization": "Bearer not-a-jwt"})
    assert forged.status_code == 401

    assert httpx.get(f"{verifier.url}/metrics").status_code == 404  # not on the API port
    url = f"http://127.0.0.1:{verifier.metrics_port}/metrics"  # type: ignore[attr-defined]
    deadline_text = ""
    for _ in range(100):  # device gauges refresh on the follower's first round
        deadline_text = httpx.get(url).text
        if 'envattest_devices{key_class="software",state="active"} 1.0' in deadline_text:
            break
        subprocess.run(["sleep", "0.2"], check=True)
    text = deadline_text
    assert 'envattest_devices{key_class="software",state="active"} 1.0' in text
    assert 'envattest_attestation_denials_total{reason="required_fields"} 1.0' in text
    assert 'envattest_token_refusals_total{endpoint="authz",step="token"} 1.0' in text
    lines = [json.loads(x) for x in verifier.log_path.read_text().splitlines() if x.startswith("{")]
    decision = next(x for x in lines if x["logger"] == "envattest.decision")
    request = next(x for x in lines if x["logger"] == "envattest.http" and x["status"] == 403)
    assert request["request_id"] == "rid-console-1"
    assert request["route"] == "/v1/attest"
    assert decision["device_id"] == device.device_id
    assert decision["decision"] == "deny"
    assert decision["reasons"] == ["required_fields"]


def test_docs_load_every_asset_from_the_verifier(tmp_path: Path) -> None:
    process = init_verifier(tmp_path / "data").start()
    try:
        page = httpx.get(f"{process.url}/docs").text
        refs = re.findall(r'(?:src|href)="([^"]+)"', page) + re.findall(r"url: '([^']+)'", page)
        assert refs
        assert all(ref.startswith("/") for ref in refs), refs
        for ref in re.findall(r'(?:src|href)="([^"]+)"', page):
            assert httpx.get(f"{process.url}{ref}").status_code == 200, ref
        assert httpx.get(f"{process.url}/redoc").status_code == 404  # its assets need a CDN
    finally:
        process.stop()
