"""The benchmark's reference server (bench/reference.py) does the work it stands for: a
ratio against it only means something if it refuses what the verifier refuses. Run as a
real process on loopback, on SQLite."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from attest.keys.software import SoftwareKey
from attest.manifest import parse_manifest
from server.datadir import default_manifest
from tests._support import free_port
from tests.devices import TestDevice
from tests.server.dpop_support import proof

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench._driver import DPOP_EXTERNAL_URL, DPOP_PATH
from bench._load import ServerProcess, reference_server
from bench.reference import prepare

URL = DPOP_EXTERNAL_URL + DPOP_PATH
GATEWAY = {"X-Original-Method": "POST", "X-Original-URI": DPOP_PATH}


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[tuple[ServerProcess, TestDevice]]:
    key = SoftwareKey.create(tmp_path / "device.pem")
    database = str(tmp_path / "reference.db")
    prepare(database, {"dev_ref": key.public_jwk()})
    server = reference_server(database, free_port(), tmp_path).start()
    try:
        manifest = parse_manifest(default_manifest("reference"))
        yield server, TestDevice(server.url, "dev_ref", key, manifest)
    finally:
        server.stop()


def _token(device: TestDevice) -> str:
    answer = device.attest(device.evidence())
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def _authz(server: ServerProcess, headers: dict[str, str]) -> int:
    return httpx.get(f"{server.url}/v1/authz", headers=headers).status_code


def test_a_nonce_is_spent_once(reference: tuple[ServerProcess, TestDevice]) -> None:
    _server, device = reference
    evidence = device.evidence()
    assert device.attest(evidence).status_code == 200
    assert device.attest(evidence).status_code == 401


def test_a_forged_token_is_refused(reference: tuple[ServerProcess, TestDevice]) -> None:
    server, device = reference
    token = _token(device)
    assert _authz(server, {"Authorization": f"Bearer {token}"}) == 204
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert _authz(server, {"Authorization": f"Bearer {forged}"}) == 401


def test_dpop_checks_the_proof_and_spends_it(
    reference: tuple[ServerProcess, TestDevice], tmp_path: Path
) -> None:
    server, device = reference
    token = _token(device)

    def dpop(proof_text: str) -> int:
        return _authz(server, {"Authorization": f"DPoP {token}", "DPoP": proof_text, **GATEWAY})

    good = proof(device.key, token, "POST", URL)
    assert dpop(good) == 204
    assert dpop(good) == 401  # replayed: its jti is spent
    assert dpop(proof(device.key, token, "GET", URL)) == 401  # another method
    assert dpop(proof(device.key, token, "POST", URL + "x")) == 401  # another URL
    assert dpop(proof(device.key, token + "x", "POST", URL)) == 401  # another token (ath)
    other = SoftwareKey.create(tmp_path / "other.pem")
    assert dpop(proof(other, token, "POST", URL)) == 401  # not the key the token is bound to
    assert dpop(proof(device.key, token, "POST", URL, now=lambda: 1.0)) == 401  # stale
    assert dpop(proof(device.key, token, "POST", URL)) == 204  # a fresh proof passes again
