"""Every tested gateway in docs/gateways.md, run for real in front of the stub LLM API.

For each: a valid token reaches the upstream with the identity the verifier decided; no
token, garbage, a forged signature, ``alg: none``, an expired token and a revoked device are
refused before the upstream sees anything; client-sent identity headers never reach it;
large request bodies and server-sent events pass. HAProxy's offline ``jwt_verify`` mode
accepts a revoked device until its token expires, as documented, and the test pins that.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.devices import TestDevice
from tests.gateway.caddy import running_caddy
from tests.gateway.haproxy import running_haproxy
from tests.gateway.nginx import running_nginx
from tests.server.support import (
    access_token,
    enrolled_device,
    mint_token,
    other_key,
    server_signing_key,
    token_claims,
)
from tests.servers import VerifierProcess, run_server_cli
from tests.stubs.llm_api import StubLlmApi, running_llm_api

ISSUER = "https://verifier.test"  # tests.servers.init_verifier
SPOOFED = {
    "X-Envattest-Device": "dev_spoofed",
    "X-Envattest-Key-Class": "tpm2",
    "X-Envattest-Policy-Version": "spoofed",
}
IDENTITY = [h.lower() for h in SPOOFED]


@dataclass(frozen=True)
class Gateway:
    """A running gateway, the stub behind it, and whether it sees revocation at once."""

    name: str
    url: str
    upstream: StubLlmApi
    revocation_at_once: bool


Starter = Callable[[Path, VerifierProcess, int], AbstractContextManager[str]]
STARTERS: dict[str, tuple[Starter, bool]] = {
    "nginx": (
        lambda d, v, up: running_nginx(d, verifier_port=v.port, upstream_port=up), True
    ),
    "caddy": (
        lambda d, v, up: running_caddy(d, verifier_port=v.port, upstream_port=up), True
    ),
    "haproxy-lua": (
        lambda d, v, up: running_haproxy(
            "lua", d, verifier_url=v.url, upstream_port=up, issuer=ISSUER
        ),
        True,
    ),
    "haproxy-jwt": (
        lambda d, v, up: running_haproxy(
            "jwt", d, verifier_url=v.url, upstream_port=up, issuer=ISSUER
        ),
        False,
    ),
}  # fmt: skip


@pytest.fixture(scope="module", params=list(STARTERS))
def gateway(
    request: pytest.FixtureRequest,
    shared_verifier: VerifierProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    start, at_once = STARTERS[request.param]
    with (
        running_llm_api() as upstream,
        start(
            tmp_path_factory.mktemp(request.param),
            shared_verifier,
            int(upstream.url.rsplit(":", 1)[1]),
        ) as url,
    ):
        yield Gateway(request.param, url, upstream, at_once)


@pytest.fixture(scope="module")
def device(
    shared_verifier: VerifierProcess, tmp_path_factory: pytest.TempPathFactory
) -> TestDevice:
    return enrolled_device(shared_verifier, tmp_path_factory.mktemp("dev") / "key.pem")


def _post(
    gateway: Gateway, headers: dict[str, str], body: Mapping[str, object] | None = None
) -> httpx.Response:
    payload = json.dumps(body or {"model": "stub-model", "max_tokens": 8, "messages": []})
    headers = {"Content-Type": "application/json", **headers}
    return httpx.post(f"{gateway.url}/v1/messages", content=payload, headers=headers, timeout=30)


def test_a_valid_token_reaches_the_upstream_with_the_verifiers_identity(
    gateway: Gateway, device: TestDevice
) -> None:
    token = access_token(device)
    for headers in ({"Authorization": f"Bearer {token}"}, {"X-Api-Key": token}):
        gateway.upstream.clear()
        answer = _post(gateway, headers)
        assert answer.status_code == 200, answer.text
        seen = gateway.upstream.requests[-1].headers
        assert seen["x-envattest-device"] == device.device_id
        assert seen["x-envattest-key-class"] == "software"
        assert seen["x-envattest-policy-version"] == "default-1"


def test_client_sent_identity_headers_are_overwritten(gateway: Gateway, device: TestDevice) -> None:
    gateway.upstream.clear()
    answer = _post(gateway, {"Authorization": f"Bearer {access_token(device)}", **SPOOFED})
    assert answer.status_code == 200, answer.text
    seen = gateway.upstream.requests[-1].headers
    assert seen["x-envattest-device"] == device.device_id
    assert seen["x-envattest-key-class"] == "software"
    assert seen["x-envattest-policy-version"] == "default-1"


def _refused_tokens(verifier: VerifierProcess, device: TestDevice) -> dict[str, str]:
    claims = token_claims(access_token(device))
    kid, key = server_signing_key(verifier.data_dir)
    now = int(time.time())
    return {
        "none": "",
        "garbage": "not-a-token",
        "expired": mint_token({**claims, "iat": now - 3600, "exp": now - 60}, key=key, kid=kid),
        "forged (another key)": mint_token(claims, key=other_key(), kid=kid),
        "alg none": mint_token(claims, key=None, kid=kid, alg="none"),
        "another issuer": mint_token({**claims, "iss": "https://evil.test"}, key=key, kid=kid),
    }


def test_bad_tokens_are_refused_before_the_upstream(
    shared_verifier: VerifierProcess, gateway: Gateway, device: TestDevice
) -> None:
    gateway.upstream.clear()
    for name, token in _refused_tokens(shared_verifier, device).items():
        for header in ("Authorization", "X-Api-Key"):
            value = f"Bearer {token}" if header == "Authorization" and token else token
            headers = {header: value, **SPOOFED} if value else dict(SPOOFED)
            assert _post(gateway, headers).status_code in (401, 403), (gateway.name, name, header)
    assert gateway.upstream.requests == []


def test_a_revoked_device(
    shared_verifier: VerifierProcess, gateway: Gateway, tmp_path: Path
) -> None:
    device = enrolled_device(shared_verifier, tmp_path / "key.pem")
    token = access_token(device)
    assert _post(gateway, {"Authorization": f"Bearer {token}"}).status_code == 200
    run_server_cli(
        ["devices", "revoke", "--data-dir", str(shared_verifier.data_dir), device.device_id]
    )
    gateway.upstream.clear()
    answer = _post(gateway, {"Authorization": f"Bearer {token}"})
    if gateway.revocation_at_once:
        assert answer.status_code == 401
        assert gateway.upstream.requests == []
    else:
        # offline jwt_verify: accepted until exp (docs/gateways.md states this limit)
        assert answer.status_code == 200
        assert token_claims(token)["exp"] > time.time()


def test_large_bodies_and_streams_pass(gateway: Gateway, device: TestDevice) -> None:
    token = access_token(device)
    gateway.upstream.clear()
    big = {"model": "stub-model", "messages": [{"role": "user", "content": "x" * (2 << 20)}]}
    answer = _post(gateway, {"Authorization": f"Bearer {token}"}, big)
    assert answer.status_code == 200, answer.text
    assert len(gateway.upstream.requests[-1].body) == len(json.dumps(big))
    stream = _post(gateway, {"X-Api-Key": token}, {"model": "m", "stream": True})
    assert stream.status_code == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.text.rstrip().endswith('data: {"type": "message_stop"}')


def test_an_identity_header_the_verifier_leaves_empty_is_not_the_clients(
    shared_verifier: VerifierProcess, gateway: Gateway, device: TestDevice
) -> None:
    # a genuine token without policy_version: the verifier answers an empty header, and a
    # gateway that only copies non-empty answers would pass the client's value on
    claims = token_claims(access_token(device))
    del claims["policy_version"]
    kid, key = server_signing_key(shared_verifier.data_dir)
    gateway.upstream.clear()
    answer = _post(gateway, {"X-Api-Key": mint_token(claims, key=key, kid=kid), **SPOOFED})
    assert answer.status_code == 200, answer.text
    seen = gateway.upstream.requests[-1].headers
    assert seen["x-envattest-device"] == device.device_id
    assert seen.get("x-envattest-policy-version", "") == ""
