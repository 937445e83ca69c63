"""LiteLLM's real proxy with ``envattest_gateway.litellm`` as its custom auth (docs/gateways.md).

Allowed: the request reaches the stub model as the mapped LiteLLM user and key. Refused with
the reason, the model never reached: no token, garbage, forged, ``alg: none``, expired,
another audience, a DPoP-bound token sent as a bearer token (signed by the verifier's key with
the ``binding`` claim it puts in bound tokens), and a revoked device (within the introspection
cache time).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from envattest_gateway.introspection import INACTIVE
from tests.devices import TestDevice
from tests.gateway.litellm_proxy import running_litellm
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

CACHE_S = 1.0


@dataclass(frozen=True)
class Proxy:
    url: str
    record: Path
    upstream: StubLlmApi
    device: TestDevice


@pytest.fixture(scope="module")
def proxy(
    shared_verifier: VerifierProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    device = enrolled_device(shared_verifier, tmp_path_factory.mktemp("dev") / "key.pem")
    credential = shared_verifier.gateway_credential("litellm")
    with (
        running_llm_api() as upstream,
        running_litellm(
            tmp_path_factory.mktemp("litellm"),
            verifier_url=shared_verifier.url,
            credential=credential,
            upstream_url=upstream.url,
            issuer="https://verifier.test",
            users={device.device_id: "alice@example.org"},
            cache_s=CACHE_S,
        ) as (url, record),
    ):
        yield Proxy(url, record, upstream, device)


def _chat(proxy: Proxy, headers: dict[str, str]) -> httpx.Response:
    body = {"model": "claude-sonnet", "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(f"{proxy.url}/v1/chat/completions", json=body, headers=headers, timeout=60)


def _recorded(proxy: Proxy) -> list[dict[str, object]]:
    deadline = time.monotonic() + 10  # LiteLLM logs after answering
    while time.monotonic() < deadline:
        if proxy.record.exists() and proxy.record.read_text().strip():
            return [json.loads(line) for line in proxy.record.read_text().splitlines()]
        time.sleep(0.1)
    return []


def test_a_valid_token_reaches_the_model_as_the_mapped_user(proxy: Proxy) -> None:
    token = access_token(proxy.device)
    for headers in ({"Authorization": f"Bearer {token}"}, {"X-Api-Key": token}):
        answer = _chat(proxy, headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"] == "stub says hello"
    last = _recorded(proxy)[-1]
    assert last["user_id"] == "alice@example.org"
    assert last["key_alias"] == f"envattest:{proxy.device.device_id}"
    assert proxy.upstream.model_requests()[-1].headers["authorization"] == (
        "Bearer stub-upstream-key"
    )


def test_bad_tokens_are_refused_with_the_reason(
    shared_verifier: VerifierProcess, proxy: Proxy
) -> None:
    claims = token_claims(access_token(proxy.device))
    kid, key = server_signing_key(shared_verifier.data_dir)
    now = int(time.time())
    bound = mint_token({**claims, "binding": "dpop"}, key=key, kid=kid)
    expired = mint_token({**claims, "iat": now - 3600, "exp": now - 60}, key=key, kid=kid)
    refused = {
        "none": ({}, "no envattest access token"),
        "garbage": ({"Authorization": "Bearer not-a-token"}, "malformed"),
        "forged": (
            {"Authorization": f"Bearer {mint_token(claims, key=other_key(), kid=kid)}"},
            "does not verify",
        ),
        "alg none": (
            {"Authorization": f"Bearer {mint_token(claims, key=None, kid=kid, alg='none')}"},
            "not signed with ES256",
        ),
        "expired": (
            {"X-Api-Key": expired},
            "has expired",
        ),
        "another audience": (
            {"X-Api-Key": mint_token({**claims, "aud": "elsewhere"}, key=key, kid=kid)},
            "does not verify",
        ),
        "DPoP-bound token as bearer": (
            {"Authorization": f"Bearer {bound}"},
            "bound to the device key (DPoP)",
        ),
    }  # fmt: skip
    proxy.upstream.clear()
    for name, (headers, reason) in refused.items():
        answer = _chat(proxy, headers)
        assert answer.status_code == 401, (name, answer.text)
        assert reason in answer.text, (name, answer.text)
        assert "'envattest " in answer.text, name  # each reason names the command to run
    assert proxy.upstream.requests == []


def test_a_revoked_device_is_refused_within_the_cache_time(
    shared_verifier: VerifierProcess, proxy: Proxy, tmp_path: Path
) -> None:
    device = enrolled_device(shared_verifier, tmp_path / "key.pem")
    token = access_token(device)
    assert _chat(proxy, {"Authorization": f"Bearer {token}"}).status_code == 200
    run_server_cli(
        ["devices", "revoke", "--data-dir", str(shared_verifier.data_dir), device.device_id]
    )
    time.sleep(CACHE_S + 0.5)
    proxy.upstream.clear()
    answer = _chat(proxy, {"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401
    assert INACTIVE.split(":")[0] in answer.text
    assert proxy.upstream.requests == []
