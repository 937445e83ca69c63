"""Relying parties: introspection (RFC 7662) with a gateway credential, and forward auth."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import jwt
import pytest

from tests.devices import TestDevice
from tests.server.support import (
    access_token,
    enrolled_device,
    mint_token,
    other_key,
    server_cli,
    server_signing_key,
    token_claims,
)
from tests.servers import VerifierProcess, run_server_cli


@pytest.fixture(scope="module")
def device(
    shared_verifier: VerifierProcess, tmp_path_factory: pytest.TempPathFactory
) -> TestDevice:
    return enrolled_device(shared_verifier, tmp_path_factory.mktemp("dev") / "key.pem")


@pytest.fixture(scope="module")
def credential(shared_verifier: VerifierProcess) -> str:
    out = run_server_cli(
        ["gateway-credential", "create", "--data-dir", str(shared_verifier.data_dir),
         "--name", "test-gateway"]
    )  # fmt: skip
    return out.strip()


def _introspect(server: VerifierProcess, credential: str, token: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/introspect",
        data={"token": token},
        headers={"Authorization": f"Bearer {credential}"},
    )


def _authz(server: VerifierProcess, token: str, query: str = "") -> httpx.Response:
    return httpx.get(f"{server.url}/v1/authz{query}", headers={"Authorization": f"Bearer {token}"})


def _forgeries(server: VerifierProcess, genuine: str) -> dict[str, str]:
    claims = token_claims(genuine)
    kid, server_key = server_signing_key(server.data_dir)
    expired = {**claims, "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}
    return {
        "re-signed with another key": mint_token(claims, key=other_key(), kid=kid),
        "alg none": mint_token(claims, key=None, kid=kid, alg="none"),
        "HS256 with the kid as secret": jwt_hs256(claims, kid),
        "unknown kid": mint_token(claims, key=other_key(), kid="not-a-published-kid"),
        "expired": mint_token(expired, key=server_key, kid=kid),
        "wrong issuer": mint_token({**claims, "iss": "someone-else"}, key=server_key, kid=kid),
        "other key binding": mint_token({**claims, "cnf": {"jkt": "x" * 43}}, key=server_key,
                                        kid=kid),
        "garbage": "not.a.token",
    }  # fmt: skip


def jwt_hs256(claims: dict[str, object], secret: str) -> str:
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": secret})


def test_introspection_of_an_active_token(
    shared_verifier: VerifierProcess, device: TestDevice, credential: str
) -> None:
    token = access_token(device)
    answer = _introspect(shared_verifier, credential, token)
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["active"] is True
    assert doc["sub"] == device.device_id
    assert doc["key_class"] == "software"
    assert doc["policy_version"] == "default-1"
    assert doc["iss"] == "https://verifier.test"
    assert doc["aud"] == "envattest"
    assert doc["exp"] > doc["iat"]
    assert doc["jti"]
    assert doc["cnf"]["jkt"]


def test_introspection_takes_json_and_http_basic(
    shared_verifier: VerifierProcess, device: TestDevice, credential: str
) -> None:
    credential_id, _, secret = credential.partition(".")
    answer = httpx.post(
        f"{shared_verifier.url}/v1/introspect",
        json={"token": access_token(device)},
        auth=(credential_id, secret),
    )
    assert answer.status_code == 200
    assert answer.json()["active"] is True


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer gw_nope.secret", "Basic Z3dfbm9wZTpzZWNyZXQ=", "Bearer", "Digest x"],
)
def test_introspection_needs_a_gateway_credential(
    shared_verifier: VerifierProcess, device: TestDevice, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    answer = httpx.post(
        f"{shared_verifier.url}/v1/introspect", data={"token": "x"}, headers=headers
    )
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "Basic" in answer.headers["www-authenticate"]
    assert "gateway-credential create" in answer.json()["detail"]


def test_a_wrong_secret_for_a_real_credential_is_refused(
    shared_verifier: VerifierProcess, credential: str
) -> None:
    credential_id = credential.partition(".")[0]
    answer = _introspect(shared_verifier, f"{credential_id}.wrong-secret", "x")
    assert answer.status_code == 401


def test_forged_expired_and_unknown_tokens_are_inactive_and_refused(
    shared_verifier: VerifierProcess, device: TestDevice, credential: str
) -> None:
    for name, token in _forgeries(shared_verifier, access_token(device)).items():
        answer = _introspect(shared_verifier, credential, token)
        assert answer.status_code == 200, name
        assert answer.json() == {"active": False}, name
        refused = _authz(shared_verifier, token)
        assert refused.status_code == 401, name
        assert refused.headers["www-authenticate"].startswith("Bearer"), name
        assert refused.json()["type"] == "urn:envattest:problem:unauthorized", name


def test_forward_auth_answers_204_with_identity_headers(
    shared_verifier: VerifierProcess, device: TestDevice
) -> None:
    token = access_token(device)
    for headers in ({"Authorization": f"Bearer {token}"}, {"X-Api-Key": token}):
        answer = httpx.get(f"{shared_verifier.url}/v1/authz", headers=headers)
        assert answer.status_code == 204, answer.text
        assert answer.headers["x-envattest-device"] == device.device_id
        assert answer.headers["x-envattest-key-class"] == "software"
        assert answer.headers["x-envattest-policy-version"] == "default-1"
    # the original method is forwarded by some gateways
    posted = httpx.post(f"{shared_verifier.url}/v1/authz", headers={"X-Api-Key": token})
    assert posted.status_code == 204
    # Envoy ext_authz appends the original path to its path_prefix
    envoy = httpx.put(f"{shared_verifier.url}/v1/authz/v1/messages", headers={"X-Api-Key": token})
    assert envoy.status_code == 204
    assert httpx.put(f"{shared_verifier.url}/v1/authz/v1/messages").status_code == 401


def test_forward_auth_checks_the_audience_when_asked(
    shared_verifier: VerifierProcess, device: TestDevice
) -> None:
    token = access_token(device)
    assert _authz(shared_verifier, token, "?aud=envattest").status_code == 204
    assert _authz(shared_verifier, token, "?aud=another-service").status_code == 401


def test_behind_envoy_the_query_string_is_the_clients_and_names_no_audience(
    shared_verifier: VerifierProcess, device: TestDevice
) -> None:
    """Envoy appends the client's path and query to /v1/authz/: an aud there is the client's
    choice, so it is not read (the configured authz_audience is what counts)."""
    token = access_token(device)
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{shared_verifier.url}/v1/authz/v1/messages?aud=another-service"
    assert httpx.get(url, headers=headers).status_code == 204
    assert _authz(shared_verifier, token, "?aud=another-service").status_code == 401


def test_forward_auth_without_a_token_is_401(shared_verifier: VerifierProcess) -> None:
    answer = httpx.get(f"{shared_verifier.url}/v1/authz")
    assert answer.status_code == 401
    assert "envattest token" in answer.json()["detail"]


def test_revocation_takes_effect_at_once(
    shared_verifier: VerifierProcess, credential: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    device = enrolled_device(shared_verifier, tmp_path / "key.pem")
    token = access_token(device)
    assert _authz(shared_verifier, token).status_code == 204
    d = str(shared_verifier.data_dir)
    run = server_cli(capsys, "devices", "revoke", "--data-dir", d, device.device_id)
    assert run.code == 0, run.err
    assert _authz(shared_verifier, token).status_code == 401
    assert _introspect(shared_verifier, credential, token).json() == {"active": False}
    with pytest.raises(httpx.HTTPStatusError):
        device.challenge()  # no new attestation either

    listed = json.loads(server_cli(capsys, "devices", "list", "--data-dir", d, "--json").out)
    assert {x["device_id"]: x["state"] for x in listed}[device.device_id] == "revoked"
    audit = server_cli(capsys, "audit", "list", "--data-dir", d, "--device", device.device_id)
    assert "admin.device.revoke" in audit.out
    missing = server_cli(capsys, "devices", "revoke", "--data-dir", d, "dev_unknown")
    assert missing.code == 2
    assert "devices list" in missing.err
