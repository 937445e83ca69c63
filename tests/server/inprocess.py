"""A verifier application in this process (no socket): an enrolled device, a gateway
credential and clients that connect from chosen addresses."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from attest.evidence import ConsentClaim, new_claims, sign_evidence
from attest.keys import KeyClass
from attest.keys.software import SoftwareKey
from server.app import build_runtime, create_app
from server.config import load_config
from server.credentials import new_gateway_credential
from server.datadir import init_data_dir
from server.runtime import Runtime
from server.store import AuditEvent, AuditRecord
from tests.devices import EVIDENCE, default_signals


@dataclass
class Verifier:
    """An application, its runtime, one enrolled software-key device and a gateway secret."""

    runtime: Runtime
    app: FastAPI
    device_id: str
    key: SoftwareKey
    gateway_secret: str

    def client(self, address: str = "192.0.2.10") -> TestClient:
        """A client whose TCP peer address is ``address``."""
        return TestClient(self.app, client=(address, 50000), raise_server_exceptions=False)

    def evidence(self, client: TestClient, *, device_id: str | None = None) -> str:
        """Fresh evidence of the enrolled device, over a nonce from ``client``."""
        nonce = client.post("/v1/challenge", json={"device_id": self.device_id}).json()["nonce"]
        manifest = self.runtime.manifest
        consent = ConsentClaim(manifest.sha256, int(time.time()), tuple(sorted(manifest.field_ids)))  # type: ignore[arg-type]
        claims = new_claims(
            nonce=nonce, device_id=device_id or self.device_id, consent=consent,
            signals=default_signals(manifest), now=int(time.time()),
        )  # fmt: skip
        return sign_evidence(claims, self.key.sign)

    def attest(self, client: TestClient, evidence: str | bytes) -> int:
        """POST /v1/attest; the status."""
        body = evidence.encode() if isinstance(evidence, str) else evidence
        status: int = client.post("/v1/attest", content=body, headers=EVIDENCE).status_code
        return status

    def last_audit(self) -> AuditRecord:
        """The newest audit record."""
        return self.runtime.store.audit_records()[-1]


def build_verifier(data_dir: Path, *, settings: str = "") -> Verifier:
    """Initialise ``data_dir`` (``settings`` appended to server.toml), enroll one device."""
    config = init_data_dir(data_dir, issuer="https://verifier.test")
    with (config.data_dir / "server.toml").open("a") as toml:
        toml.write(settings)
    runtime = build_runtime(load_config(config.data_dir))
    key = SoftwareKey.create(data_dir.parent / f"{data_dir.name}-device.pem")
    enrolled = runtime.enrollment.add_device(key.public_jwk(), KeyClass.SOFTWARE, proof="test")
    gateway = new_gateway_credential("gw", now=int(time.time()))
    runtime.store.add_gateway_credential(
        gateway.record, AuditEvent("gateway_credential.create", None, None, {})
    )
    return Verifier(runtime, create_app(runtime), enrolled.device_id, key, gateway.presented)
