"""Forward auth and introspection as hot paths of the edge layer (``RelyingParty``): the
same answers as documented, refusals reported in the order of the checks, one database
round per DPoP request."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from attest.dpop import create_proof
from server.api.relying import AUTHZ, AUTHZ_METHODS, INTROSPECT, fast_routes
from tests.server.dpop_support import POLICY
from tests.server.inprocess import Verifier, build_verifier

GATEWAY = "https://gw.test"


@pytest.fixture
def verifier(tmp_path: Path) -> Verifier:
    return build_verifier(tmp_path / "v", settings=f'authz_external_url = "{GATEWAY}"\n')


def _token(verifier: Verifier, client: TestClient) -> str:
    answer = client.post(
        "/v1/attest",
        content=verifier.evidence(client),
        headers={"Content-Type": "application/eat+jwt"},
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def _refusals(verifier: Verifier, endpoint: str) -> dict[str, float]:
    counter = verifier.runtime.metrics.token_refusals
    return {
        sample.labels["step"]: sample.value
        for metric in counter.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels["endpoint"] == endpoint and sample.value
    }


def test_the_edge_layer_answers_every_forward_auth_method_and_introspection(
    verifier: Verifier,
) -> None:
    routes = fast_routes(verifier.runtime)
    assert set(routes) == {(m, AUTHZ) for m in AUTHZ_METHODS} | {("POST", INTROSPECT)}


def test_forward_auth_answers_204_without_a_body_or_content_length(verifier: Verifier) -> None:
    with verifier.client() as client:
        token = _token(verifier, client)
        answer = client.get(AUTHZ, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 204
        assert "content-length" not in answer.headers  # RFC 9110 section 8.6
        assert answer.headers["x-envattest-binding"] == "bearer"
        assert answer.headers["cache-control"] == "no-store"
        # the framework route (Envoy's path form) answers the same through the same code
        envoy = client.get(AUTHZ + "/v1/messages", headers={"Authorization": f"Bearer {token}"})
        assert envoy.status_code == 204
        assert {k: v for k, v in envoy.headers.items() if k.startswith("x-envattest")} == {
            k: v for k, v in answer.headers.items() if k.startswith("x-envattest")
        }


def test_introspection_leaves_out_members_without_a_value(verifier: Verifier) -> None:
    with verifier.client() as client:
        token = _token(verifier, client)
        answer = client.post(
            INTROSPECT,
            json={"token": token},
            headers={"Authorization": f"Bearer {verifier.gateway_secret}"},
        )
        assert answer.status_code == 200, answer.text
        document = answer.json()
        assert document["active"] is True
        assert document["sub"] == verifier.device_id
        assert None not in document.values()
        refused = client.post(INTROSPECT, json={"token": token})
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"


def _dpop_verifier(tmp_path: Path) -> Verifier:
    built = build_verifier(tmp_path / "d", settings=f'authz_external_url = "{GATEWAY}"\n')
    policy = POLICY.format(binding="dpop", extra="")
    (built.runtime.config.data_dir / "policy.toml").write_text(policy)
    built.runtime.reload()
    return built


def _proof(verifier: Verifier, token: str, **overrides: Any) -> str:
    return create_proof(
        signer=verifier.key.sign,
        public_jwk=verifier.key.public_jwk(),
        htm="POST",
        htu=GATEWAY + "/v1/messages",
        access_token=token,
        **overrides,
    )


def _dpop(token: str, proof: str) -> dict[str, str]:
    return {
        "Authorization": f"DPoP {token}",
        "DPoP": proof,
        "X-Original-Method": "POST",
        "X-Original-URI": "/v1/messages",
    }


def test_a_revoked_device_is_the_reported_refusal_even_with_a_bad_or_replayed_proof(
    tmp_path: Path,
) -> None:
    """The proof is verified (and its id spent) before the database round, yet the steps
    are reported in their order: (4) device before (7) the proof and (8) replay."""
    verifier = _dpop_verifier(tmp_path)
    with verifier.client() as client:
        token = _token(verifier, client)
        used = _proof(verifier, token)
        assert client.get(AUTHZ, headers=_dpop(token, used)).status_code == 204
        assert client.get(AUTHZ, headers=_dpop(token, used)).status_code == 401
        assert _refusals(verifier, "authz") == {"dpop.replay": 1.0}
        verifier.runtime.store.set_device_state(verifier.device_id, revoked_at=int(time.time()))
        stale = _proof(verifier, token, now=lambda: time.time() - 3600)
        for proof in (used, stale, _proof(verifier, token)):
            refused = client.get(AUTHZ, headers=_dpop(token, proof))
            assert refused.status_code == 401
        assert _refusals(verifier, "authz") == {"dpop.replay": 1.0, "device": 3.0}
