"""Operations: metrics, JSON logs, rate limits (429), TLS, and 503 when the database fails
(never a token without its audit record)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient

from attest.b64 import b64url_decode
from attest.evidence import ConsentClaim, new_claims, sign_evidence
from attest.keys.software import SoftwareKey
from attest.manifest import parse_manifest
from server.app import build_runtime, create_app
from server.config import load_config
from server.datadir import init_data_dir
from server.errors import UnavailableError
from server.runtime import Runtime
from server.store import AuditEvent
from server.store.sql import make_engine
from tests._support import free_port
from tests.devices import EVIDENCE, TestDevice, default_signals
from tests.server.support import enrolled_device
from tests.servers import REPO, VerifierProcess, clean_env, init_verifier


def test_metrics_count_decisions_refusals_and_latency(
    shared_verifier: VerifierProcess, tmp_path: Path
) -> None:
    device = enrolled_device(shared_verifier, tmp_path / "key.pem")
    evidence = device.evidence()
    assert device.attest(evidence).status_code == 200
    assert device.attest(evidence).status_code == 401
    text = httpx.get(f"{shared_verifier.url}/metrics").text
    assert 'envattest_attestations_total{decision="allow"}' in text
    assert 'envattest_attestations_total{decision="reject"}' in text
    assert "envattest_nonce_refusals_total 1.0" in text
    assert 'envattest_http_request_duration_seconds_count{method="POST",route="/v1/attest"}' in text


def test_json_logs_are_one_object_a_line(tmp_path: Path) -> None:
    server = init_verifier(tmp_path / "v").start("--log-format", "json", "--log-level", "info")
    try:
        httpx.get(f"{server.url}/v1/manifest")
    finally:
        server.stop()
    lines = [line for line in server.log_path.read_text().splitlines() if line.strip()]
    docs = [json.loads(line) for line in lines]  # every line is JSON
    http = [d for d in docs if d["logger"] == "envattest.http" and d["route"] == "/v1/manifest"]
    assert http
    assert http[0]["status"] == 200
    assert http[0]["level"] == "info"


def test_rate_limits_answer_429_with_retry_after(tmp_path: Path) -> None:
    server = init_verifier(tmp_path / "v")
    with (server.data_dir / "server.toml").open("a") as toml:
        toml.write("rate_limit_per_minute = 30\ndevice_rate_limit_per_minute = 2\n")
    server.start()
    try:
        device = TestDevice.enroll(server.url, server.enroll_token(), tmp_path / "key.pem")
        for _ in range(2):
            assert device.attest(device.evidence()).status_code == 200
        # the device's own proven attestations spent its bucket: the next one waits
        limited = device.attest(device.evidence())
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["type"] == "urn:envattest:problem:rate-limited"
        assert "this device" in limited.json()["detail"]
        statuses = [httpx.get(f"{server.url}/v1/manifest").status_code for _ in range(30)]
        assert 429 in statuses  # the per-address bucket ran dry as well
        assert httpx.get(f"{server.url}/healthz").status_code == 200  # never limited
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'envattest_rate_limited_total{limit="device"} 1.0' in metrics
        assert 'envattest_rate_limited_total{limit="address"}' in metrics
        assert 'route="/v1/attest",status="429"' in metrics
    finally:
        server.stop()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_serve_speaks_tls(tmp_path: Path) -> None:
    server = init_verifier(tmp_path / "v")
    cert, key = _self_signed(tmp_path)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--data-dir", str(server.data_dir),
         "--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key),
         "--log-level", "warning"],
        env=clean_env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        trust = ssl.create_default_context(cafile=str(cert))
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=trust)
                break
            except httpx.HTTPError:
                assert process.poll() is None
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert answer.status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        process.terminate()
        process.wait(timeout=10)


# in process: a database that fails on cue


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    config = init_data_dir(tmp_path / "v", issuer="t")
    built = build_runtime(load_config(config.data_dir))
    try:
        yield built
    finally:
        built.store.engine.dispose()


def _enrolled(client: TestClient, runtime: Runtime, tmp_path: Path) -> tuple[str, SoftwareKey]:
    from server.enrollment import token_sha256

    token = "et_test"
    runtime.store.add_enrollment_token(token_sha256(token), uses=1, expires_at=2**40)
    key = SoftwareKey.create(tmp_path / "dev.pem")
    nonce = client.post("/v1/enroll/challenge", json={"enrollment_token": token}).json()["nonce"]
    answer = client.post(
        "/v1/enroll",
        json={"enrollment_token": token, "public_jwk": key.public_jwk(), "nonce": nonce,
              "key_attestation": key.attestation(b64url_decode(nonce))},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.json()["device_id"], key


def _evidence(client: TestClient, runtime: Runtime, device_id: str, key: SoftwareKey) -> str:
    nonce = client.post("/v1/challenge", json={"device_id": device_id}).json()["nonce"]
    manifest = parse_manifest(client.get("/v1/manifest").content)
    consent = ConsentClaim(manifest.sha256, int(time.time()), tuple(sorted(manifest.field_ids)))  # type: ignore[arg-type]
    claims = new_claims(
        nonce=nonce, device_id=device_id, consent=consent,
        signals=default_signals(manifest), now=int(time.time()),
    )  # fmt: skip
    return sign_evidence(claims, key.sign)


def test_no_token_when_the_audit_write_fails(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = TestClient(create_app(runtime))
    device_id, key = _enrolled(client, runtime, tmp_path)
    evidence = _evidence(client, runtime, device_id, key)
    original = runtime.store.spend_nonce
    issued: list[object] = []

    def failing_settle(nonce: str, *, audit: AuditEvent | None, **kw: Any) -> object:
        if audit is not None and audit.event == "attest":
            raise UnavailableError("database down", retry_after_s=2)
        return original(nonce, audit=audit, **kw)

    async def failing_settle_async(nonce: str, *, audit: AuditEvent | None, **kw: Any) -> object:
        return failing_settle(nonce, audit=audit, **kw)  # the verifier awaits its spend

    monkeypatch.setattr(runtime.store, "spend_nonce", failing_settle)
    monkeypatch.setattr(runtime.store, "spend_nonce_async", failing_settle_async)
    monkeypatch.setattr(runtime.issuer, "issue", lambda **kw: issued.append(kw))
    answer = client.post("/v1/attest", content=evidence, headers=EVIDENCE)
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "2"
    assert "access_token" not in answer.text
    assert issued == []


def test_an_unreachable_database_is_503_with_retry_after(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = TestClient(create_app(runtime))
    device_id, _key = _enrolled(client, runtime, tmp_path)
    device = runtime.store.get_device(device_id)
    assert device is not None
    token = runtime.issuer.issue(
        device_id=device_id, jkt=device.jkt, key_class="software", audience="envattest",
        ttl_s=60, policy_version="p",
    ).token  # fmt: skip
    broken = make_engine(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'db.sqlite'}")
    monkeypatch.setattr(runtime.store, "engine", broken)
    for method, path, body in (
        ("GET", "/readyz", None),
        ("POST", "/v1/challenge", {"device_id": device_id}),
        ("GET", "/v1/authz", None),
    ):
        answer = client.request(method, path, json=body, headers={"X-Api-Key": token})
        assert answer.status_code == 503, (path, answer.text)
        assert answer.headers["retry-after"] == "2"
        assert answer.json()["type"] == "urn:envattest:problem:unavailable"
    broken.dispose()


def test_healthz_stays_up(shared_verifier: VerifierProcess) -> None:
    assert httpx.get(f"{shared_verifier.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{shared_verifier.url}/readyz").json() == {"status": "ready"}
