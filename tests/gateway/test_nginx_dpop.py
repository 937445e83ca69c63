"""DPoP through a real nginx ``auth_request``: only requests with a fresh proof by the device
key, for exactly this method and URL, reach the upstream (RFC 9449 at the gateway)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from attest.keys.software import SoftwareKey
from tests._support import free_port
from tests.devices import TestDevice
from tests.gateway.nginx import running_nginx, upstream_server
from tests.server.dpop_support import dpop_headers, dpop_verifier, proof, refusals, refused_at
from tests.server.support import enrolled_device
from tests.servers import VerifierProcess

Gateway = tuple[str, VerifierProcess, list[dict[str, str]]]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    verifier = dpop_verifier(
        tmp_path_factory.mktemp("dpop") / "verifier", authz_external_url=url
    ).start()
    try:
        with (
            upstream_server() as (upstream_port, seen),
            running_nginx(
                tmp_path_factory.mktemp("nginx"),
                verifier_port=verifier.port,
                upstream_port=upstream_port,
                port=port,
            ),
        ):
            yield url, verifier, seen
    finally:
        verifier.stop()


@pytest.fixture(scope="module")
def device(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> TestDevice:
    return enrolled_device(gateway[1], tmp_path_factory.mktemp("dev") / "key.pem")


@pytest.fixture(scope="module")
def token(device: TestDevice) -> str:
    answer = device.attest(device.evidence())
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "DPoP"
    return str(answer.json()["access_token"])


def test_a_dpop_request_reaches_the_upstream(
    gateway: Gateway, device: TestDevice, token: str
) -> None:
    url, _, seen = gateway
    seen.clear()
    for method in ("GET", "POST"):
        target = f"{url}/v1/messages?beta=true"
        answer = httpx.request(method, target, headers=dpop_headers(device, token, method, target))
        assert answer.status_code == 200, answer.text
    assert [s["x-envattest-device"] for s in seen] == [device.device_id] * 2


def _refused(
    gateway: Gateway, headers: dict[str, str], *, method: str = "GET", path: str = "/v1/messages"
) -> tuple[httpx.Response, list[str]]:
    url, verifier, seen = gateway
    seen.clear()
    before = refusals(verifier)
    answer = httpx.request(method, f"{url}{path}", headers=headers)
    assert seen == [], "the upstream saw a refused request"
    return answer, refused_at(verifier, before)


def test_the_same_token_as_bearer_is_refused(gateway: Gateway, token: str) -> None:
    for headers in ({"Authorization": f"Bearer {token}"}, {"X-Api-Key": token}):
        answer, steps = _refused(gateway, headers)
        assert answer.status_code == 401
        assert steps == ["authz:dpop.scheme"]
        assert answer.headers["WWW-Authenticate"].startswith("DPoP ")


def test_a_token_without_a_proof_is_refused(gateway: Gateway, token: str) -> None:
    answer, steps = _refused(gateway, {"Authorization": f"DPoP {token}"})
    assert answer.status_code == 401
    assert steps == ["authz:dpop.proof"]


@pytest.mark.parametrize(
    ("case", "step"),
    [
        ("another URL", "dpop.htu"),
        ("another host", "dpop.htu"),
        ("another method", "dpop.htm"),
        ("another token", "dpop.ath"),
        ("no ath", "dpop.ath"),
        ("stale iat", "dpop.iat"),
        ("future iat", "dpop.iat"),
    ],
)
def test_a_proof_for_something_else_is_refused(
    gateway: Gateway, device: TestDevice, token: str, case: str, step: str
) -> None:
    url = gateway[0]
    target, method, signed_token, kw = f"{url}/v1/messages", "GET", token, {}
    if case == "another URL":
        target = f"{url}/v1/other"
    elif case == "another host":
        target = "https://elsewhere.example/v1/messages"
    elif case == "another method":
        method = "POST"
    elif case == "another token":
        signed_token = token[:-2] + "AA"
    elif case == "no ath":
        signed_token = None  # type: ignore[assignment]
    elif case == "stale iat":
        kw = {"now": lambda: __import__("time").time() - 120}
    elif case == "future iat":
        kw = {"now": lambda: __import__("time").time() + 60}
    headers = {
        "Authorization": f"DPoP {token}",
        "DPoP": proof(device.key, signed_token, method, target, **kw),
    }
    answer, steps = _refused(gateway, headers)
    assert answer.status_code == 401, case
    assert steps == [f"authz:{step}"], case


def test_a_reused_proof_is_refused(gateway: Gateway, device: TestDevice, token: str) -> None:
    url, _, seen = gateway
    target = f"{url}/v1/messages"
    headers = dpop_headers(device, token, "GET", target)
    seen.clear()
    assert httpx.get(target, headers=headers).status_code == 200
    answer, steps = _refused(gateway, headers)
    assert answer.status_code == 401
    assert steps == ["authz:dpop.replay"]


def test_a_proof_by_another_key_is_refused(
    gateway: Gateway, token: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    thief = SoftwareKey.create(tmp_path_factory.mktemp("thief") / "key.pem")
    target = f"{gateway[0]}/v1/messages"
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof(thief, token, "GET", target)}
    answer, steps = _refused(gateway, headers)
    assert answer.status_code == 401
    assert steps == ["authz:dpop.jkt"]


def test_a_client_cannot_choose_the_url_the_proof_is_checked_against(
    gateway: Gateway, device: TestDevice, token: str
) -> None:
    """X-Original-URI sent by the client is overwritten by nginx: a proof for /v1/messages
    does not open /v1/admin even when the client claims that it is asking for /v1/messages."""
    url = gateway[0]
    headers = {
        **dpop_headers(device, token, "GET", f"{url}/v1/messages"),
        "X-Original-URI": "/v1/messages",
        "X-Original-Method": "GET",
    }
    answer, steps = _refused(gateway, headers, path="/v1/admin")
    assert answer.status_code == 401
    assert steps == ["authz:dpop.htu"]
