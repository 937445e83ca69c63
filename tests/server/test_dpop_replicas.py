"""DPoP across two verifier replicas on one PostgreSQL: a proof spent at one replica is
refused at the other (the replay store is the database), revocation reaches both at once,
and a server nonce from one replica is accepted by the other."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.dpop_support import (
    dpop_headers,
    dpop_verifier,
    gateway_headers,
    proof,
    refusals,
    refused_at,
)
from tests.server.support import enrolled_device
from tests.servers import VerifierProcess, run_server_cli, running_replicas

EXTERNAL = "https://gw.example.test"


@pytest.fixture
def replicas(postgres_url: str, tmp_path: Path) -> Iterator[tuple[VerifierProcess, ...]]:
    first = dpop_verifier(
        tmp_path / "shared",
        database_url=postgres_url,
        authz_external_url=EXTERNAL,
        dpop_nonce_ttl_s=60,
    )
    with running_replicas(first) as both:
        yield both


def test_a_proof_replayed_to_the_other_replica_is_refused(
    replicas: tuple[VerifierProcess, ...], tmp_path: Path
) -> None:
    a, b = replicas
    device = enrolled_device(a, tmp_path / "key.pem")
    answer = device.attest(device.evidence())
    token = answer.json()["access_token"]
    path = "/v1/messages"

    def authz(server: VerifierProcess, nonce: str | None) -> httpx.Response:
        headers = dpop_headers(device, token, "POST", EXTERNAL + path, nonce=nonce)
        return httpx.get(
            f"{server.url}/v1/authz", headers={**headers, **gateway_headers("POST", path)}
        )

    # (1) without a nonce: 401 use_dpop_nonce with a fresh nonce, and that nonce works at b
    before = refusals(a)
    challenge = authz(a, None)
    assert challenge.status_code == 401
    assert 'error="use_dpop_nonce"' in challenge.headers["WWW-Authenticate"]
    assert refused_at(a, before) == ["authz:dpop.nonce"]
    nonce = challenge.headers["DPoP-Nonce"]
    before = refusals(b)
    assert authz(b, "not-the-nonce").status_code == 401
    assert refused_at(b, before) == ["authz:dpop.nonce"]
    # (2) one proof, spent at a, replayed at b
    headers = {
        "Authorization": f"DPoP {token}",
        "DPoP": proof(device.key, token, "POST", EXTERNAL + path, nonce=nonce),
        **gateway_headers("POST", path),
    }
    assert httpx.get(f"{a.url}/v1/authz", headers=headers).status_code == 204
    before = refusals(b)
    assert httpx.get(f"{b.url}/v1/authz", headers=headers).status_code == 401
    assert refused_at(b, before) == ["authz:dpop.replay"]
    # (3) fresh proofs pass at both; revocation at one host stops both at once
    assert authz(b, nonce).status_code == 204
    assert authz(a, nonce).status_code == 204
    run_server_cli(["devices", "revoke", "--data-dir", str(a.data_dir), device.device_id])
    for server in (a, b):
        before = refusals(server)
        assert authz(server, nonce).status_code == 401
        assert refused_at(server, before) == ["authz:device"]
