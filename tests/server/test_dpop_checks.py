"""Forward auth and introspection with DPoP-bound tokens, strict token checks, a configured
audience, usage limits and gateway credentials, against a live verifier acting for a gateway
(the test sends what nginx would add: X-Original-Method/URI, X-Forwarded-For)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.devices import TestDevice
from tests.server.dpop_support import (
    dpop_headers,
    dpop_verifier,
    gateway_headers,
    proof,
    refusals,
    refused_at,
)
from tests.server.support import (
    enrolled_device,
    mint_token,
    server_cli,
    server_signing_key,
    token_claims,
)
from tests.servers import VerifierProcess, run_server_cli

EXTERNAL = "https://gw.example.test"
USAGE = """
[rules.usage]
max_networks_per_token = 2
"""


@pytest.fixture(scope="module")
def verifier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VerifierProcess]:
    server = dpop_verifier(
        tmp_path_factory.mktemp("checks") / "verifier",
        extra_policy=USAGE,
        authz_external_url=EXTERNAL,
        trusted_proxies=["127.0.0.1/32"],  # the test stands where nginx would
        authz_audience="envattest",
        token_check="strict",
        usage_flush_s=1,
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def device(verifier: VerifierProcess, tmp_path_factory: pytest.TempPathFactory) -> TestDevice:
    return enrolled_device(verifier, tmp_path_factory.mktemp("dev") / "key.pem")


def _token(device: TestDevice) -> str:
    answer = device.attest(device.evidence())
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "DPoP"
    return str(answer.json()["access_token"])


def _authz(
    verifier: VerifierProcess,
    device: TestDevice,
    token: str,
    path: str = "/v1/messages",
    **kw: object,
) -> httpx.Response:
    headers = {
        **dpop_headers(device, token, "POST", EXTERNAL + path),
        **gateway_headers("POST", path),
    }
    headers.update({k.replace("_", "-"): str(v) for k, v in kw.items()})
    return httpx.get(f"{verifier.url}/v1/authz", headers=headers)


def test_the_token_says_what_is_proven_and_what_is_reported(device: TestDevice) -> None:
    claims = token_claims(_token(device))
    assert claims["binding"] == "dpop"
    assert claims["assurance"] == {
        "key_class": "proven-at-enrollment",
        "possession": "proven-per-request-dpop",
        "environment": "self-reported-by-agent",
        "usage": "observed-by-verifier",
    }


def test_envoy_path_form_checks_the_proof_against_the_forwarded_path(
    verifier: VerifierProcess, device: TestDevice
) -> None:
    token = _token(device)
    good = dpop_headers(device, token, "PUT", f"{EXTERNAL}/v1/files/a")
    assert httpx.put(f"{verifier.url}/v1/authz/v1/files/a", headers=good).status_code == 204
    before = refusals(verifier)
    other = dpop_headers(device, token, "PUT", f"{EXTERNAL}/v1/files/a")
    assert httpx.put(f"{verifier.url}/v1/authz/v1/files/b", headers=other).status_code == 401
    assert refused_at(verifier, before) == ["authz:dpop.htu"]


def test_a_forward_auth_request_without_the_original_request_is_refused(
    verifier: VerifierProcess, device: TestDevice
) -> None:
    token = _token(device)
    before = refusals(verifier)
    headers = dpop_headers(device, token, "GET", f"{EXTERNAL}/v1/authz")
    assert httpx.get(f"{verifier.url}/v1/authz", headers=headers).status_code == 401
    assert refused_at(verifier, before) == ["authz:dpop.target"]


def test_the_configured_audience_cannot_be_chosen_by_the_client(
    verifier: VerifierProcess, device: TestDevice
) -> None:
    claims = token_claims(_token(device))
    kid, key = server_signing_key(verifier.data_dir)
    other = mint_token({**claims, "aud": "another-service"}, key=key, kid=kid)
    before = refusals(verifier)
    answer = _authz(verifier, device, other)
    query = httpx.get(
        f"{verifier.url}/v1/authz?aud=another-service",
        headers={
            **dpop_headers(device, other, "POST", EXTERNAL + "/v1/messages"),
            **gateway_headers("POST", "/v1/messages"),
        },
    )
    assert (answer.status_code, query.status_code) == (401, 401)
    assert refusals(verifier)[("authz", "token")] - before.get(("authz", "token"), 0) == 2


def test_a_token_living_longer_than_the_policy_allows_is_refused(
    verifier: VerifierProcess, device: TestDevice
) -> None:
    claims = token_claims(_token(device))
    kid, key = server_signing_key(verifier.data_dir)
    long_lived = mint_token({**claims, "exp": claims["iat"] + 901}, key=key, kid=kid)
    before = refusals(verifier)
    assert _authz(verifier, device, long_lived).status_code == 401
    assert refused_at(verifier, before) == ["authz:token.lifetime"]


def test_strict_mode_refuses_a_token_no_audited_allow_names(
    verifier: VerifierProcess, device: TestDevice
) -> None:
    genuine = _token(device)
    assert _authz(verifier, device, genuine).status_code == 204
    kid, key = server_signing_key(verifier.data_dir)
    minted = mint_token(
        {**token_claims(genuine), "jti": "minted-with-a-stolen-key"}, key=key, kid=kid
    )
    before = refusals(verifier)
    assert _authz(verifier, device, minted).status_code == 401
    assert refused_at(verifier, before) == ["authz:token.audit"]


def test_introspection_checks_the_proof_the_gateway_passes_on(
    verifier: VerifierProcess, device: TestDevice
) -> None:
    credential = run_server_cli(
        ["gateway-credential", "create", "--data-dir", str(verifier.data_dir)]
    ).strip()
    token = _token(device)
    url = f"{EXTERNAL}/v1/messages"

    def introspect(**fields: str) -> dict[str, object]:
        answer = httpx.post(
            f"{verifier.url}/v1/introspect",
            data={"token": token, **fields},
            headers={"Authorization": f"Bearer {credential}"},
        )
        assert answer.status_code == 200, answer.text
        doc: dict[str, object] = answer.json()
        return doc

    before = refusals(verifier)
    assert introspect() == {"active": False}
    assert refused_at(verifier, before) == ["introspect:dpop.scheme"]
    active = introspect(dpop=proof(device.key, token, "POST", url), htm="POST", htu=url)
    assert active["active"] is True
    assert active["token_type"] == "DPoP"
    assert active["assurance"] == token_claims(token)["assurance"]
    before = refusals(verifier)
    wrong = introspect(dpop=proof(device.key, token, "POST", url), htm="GET", htu=url)
    assert wrong == {"active": False}
    assert refused_at(verifier, before) == ["introspect:dpop.htm"]


def test_gateway_credentials_are_listed_and_revoked_at_once(
    verifier: VerifierProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    d = str(verifier.data_dir)
    presented = server_cli(
        capsys, "gateway-credential", "create", "--data-dir", d, "--name", "gw-a"
    ).out.strip()
    credential_id = presented.split(".")[0]

    def introspect() -> int:
        return httpx.post(
            f"{verifier.url}/v1/introspect",
            data={"token": "x"},
            headers={"Authorization": f"Bearer {presented}"},
        ).status_code

    assert introspect() == 200
    listed = server_cli(capsys, "gateway-credential", "list", "--data-dir", d)
    assert f"{credential_id}  gw-a" in listed.out
    assert "active" in listed.out
    assert presented.split(".", 1)[1] not in listed.out  # never a secret
    run = server_cli(capsys, "gateway-credential", "revoke", "--data-dir", d, credential_id)
    assert run.code == 0, run.err
    assert introspect() == 401
    listed = server_cli(capsys, "gateway-credential", "list", "--data-dir", d)
    assert "revoked" in listed.out
    again = server_cli(capsys, "gateway-credential", "revoke", "--data-dir", d, credential_id)
    assert again.code != 0
    assert "gateway-credential list" in again.err
    audit = server_cli(capsys, "audit", "list", "--data-dir", d)
    assert "admin.gateway-credential.revoke" in audit.out


def test_a_token_used_from_more_networks_than_allowed_is_denied_with_the_reason(
    verifier: VerifierProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device = enrolled_device(verifier, tmp_path / "key.pem")
    token = _token(device)
    for client in ("198.51.100.7", "198.51.100.200", "2001:db8:1:2345::1"):
        # the first two share a /24; the IPv6 client is the second network
        assert _authz(verifier, device, token, X_Forwarded_For=client).status_code == 204
    before = refusals(verifier)
    answer = _authz(verifier, device, token, X_Forwarded_For="203.0.113.9")
    assert answer.status_code == 403
    assert "usage.max_networks_per_token (enforce)" in answer.json()["reasons"][0]
    assert "3 client networks; the limit is 2" in answer.json()["detail"]
    assert refused_at(verifier, before) == ["authz:usage"]
    # recorded once in the audit log, and shown to the device after the next flush
    time.sleep(2.5)
    audit = server_cli(
        capsys, "audit", "list", "--data-dir", str(verifier.data_dir), "--device", device.device_id
    )
    assert audit.out.count("usage.denied") == 1
    whoami = device_whoami(verifier, device)
    (usage,) = whoami["usage"]
    assert usage["token_jti"] == token_claims(token)["jti"]
    assert usage["requests"] == 4
    assert sorted(n["network"] for n in usage["client_networks"]) == [
        "198.51.100.0/24", "2001:db8:1:2300::/56", "203.0.113.0/24"
    ]  # fmt: skip


def device_whoami(verifier: VerifierProcess, device: TestDevice) -> dict[str, object]:
    """POST /v1/device/whoami signed by the device key."""
    from attest.devicerequest import DeviceAction, sign_device_request

    body = sign_device_request(
        device_id=device.device_id,
        nonce=device.challenge(),
        iat=int(time.time()),
        action=DeviceAction.WHOAMI,
        signer=device.key.sign,
    )
    answer = httpx.post(
        f"{verifier.url}/v1/device/whoami",
        content=body,
        headers={"Content-Type": "application/envattest-request+jwt"},
    )
    assert answer.status_code == 200, answer.text
    doc: dict[str, object] = json.loads(answer.text)
    return doc
