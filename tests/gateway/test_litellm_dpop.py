"""DPoP through LiteLLM's real proxy with ``envattest_gateway.litellm`` as its custom auth:
the agent's loopback proxy reaches the stub model with a DPoP-bound token and a fresh proof on
every request; a replayed proof, a proof for another method or URL, and the bound token sent
as a bearer token are refused, each at its step, and the model never sees them.

The hook hands LiteLLM's view of the request (method, and the URL from ``Host`` and the path)
to introspection, where the verifier checks ``htm``/``htu`` and spends the ``jti``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from agent.proxy.credentials import IssuedToken
from agent.proxy.rewrite import Upstream
from agent.proxy.running import BackgroundProxy, device_proof_factory
from envattest_gateway.checker import BOUND_AS_BEARER
from envattest_gateway.introspection import PROOF_REFUSED
from tests.devices import TestDevice
from tests.gateway.litellm_proxy import running_litellm
from tests.server.dpop_support import dpop_headers, dpop_verifier, refusals, refused_at
from tests.server.support import enrolled_device
from tests.servers import VerifierProcess
from tests.stubs.llm_api import StubLlmApi, running_llm_api

CHAT = "/v1/chat/completions"
BODY = {"model": "claude-sonnet", "messages": [{"role": "user", "content": "hi"}]}


@dataclass(frozen=True)
class Stack:
    url: str
    verifier: VerifierProcess
    upstream: StubLlmApi
    device: TestDevice
    token: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    verifier = dpop_verifier(tmp_path_factory.mktemp("dpop") / "verifier").start()
    try:
        device = enrolled_device(verifier, tmp_path_factory.mktemp("dev") / "key.pem")
        granted = device.attest(device.evidence())
        assert granted.status_code == 200, granted.text
        assert granted.json()["token_type"] == "DPoP"
        credential = verifier.gateway_credential("litellm")
        with (
            running_llm_api() as upstream,
            running_litellm(
                tmp_path_factory.mktemp("litellm"),
                verifier_url=verifier.url,
                credential=credential,
                upstream_url=upstream.url,
                issuer="https://verifier.test",
                users={},
                cache_s=1.0,
            ) as (url, _record),
        ):
            yield Stack(url, verifier, upstream, device, str(granted.json()["access_token"]))
    finally:
        verifier.stop()


def _chat(stack: Stack, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(stack.url + CHAT, json=BODY, headers=headers, timeout=60)


def test_the_agents_proxy_reaches_the_model_through_litellm_with_dpop(stack: Stack) -> None:
    proxy = BackgroundProxy(
        upstream=Upstream.parse(stack.url),
        obtain_for=lambda _e: (
            lambda: IssuedToken(stack.token, "DPoP", time.time(), time.time() + 600)
        ),
        proof=device_proof_factory(stack.device.key),
    )
    endpoint = proxy.start()
    stack.upstream.clear()
    before = refusals(stack.verifier)
    try:
        with httpx.Client(timeout=60) as tool:
            for _ in range(2):  # the second proof is new: a reused one would be refused
                answer = tool.post(
                    endpoint.base_url + CHAT, json=BODY, headers={"x-api-key": "placeholder"}
                )
                assert answer.status_code == 200, answer.text
                assert answer.json()["choices"][0]["message"]["content"] == "stub says hello"
    finally:
        proxy.stop()
    assert refused_at(stack.verifier, before) == []
    models = stack.upstream.model_requests()
    assert len(models) == 2
    # the model sees LiteLLM's own key, never the device's token or proof
    assert all(r.headers["authorization"] == "Bearer stub-upstream-key" for r in models)
    assert all("dpop" not in r.headers for r in models)


def test_a_replayed_proof_is_refused_at_the_replay_step(stack: Stack) -> None:
    headers = dpop_headers(stack.device, stack.token, "POST", stack.url + CHAT)
    assert _chat(stack, headers).status_code == 200
    stack.upstream.clear()
    before = refusals(stack.verifier)
    replayed = _chat(stack, headers)
    assert replayed.status_code == 401
    assert PROOF_REFUSED.split(";")[0] in replayed.text
    assert refused_at(stack.verifier, before) == ["introspect:dpop.replay"]
    assert stack.upstream.requests == []


@pytest.mark.parametrize(
    ("method", "path", "step"),
    [("GET", CHAT, "dpop.htm"), ("POST", "/v1/embeddings", "dpop.htu")],
)
def test_a_proof_for_another_request_is_refused_at_its_step(
    stack: Stack, method: str, path: str, step: str
) -> None:
    """LiteLLM's hook sees the original method and URL: a proof signed for another one fails."""
    headers = dpop_headers(stack.device, stack.token, method, stack.url + path)
    stack.upstream.clear()
    before = refusals(stack.verifier)
    answer = _chat(stack, headers)
    assert answer.status_code == 401
    assert refused_at(stack.verifier, before) == [f"introspect:{step}"]
    assert stack.upstream.requests == []


def test_the_bound_token_as_bearer_is_refused_in_the_hook(stack: Stack) -> None:
    stack.upstream.clear()
    before = refusals(stack.verifier)
    answer = _chat(stack, {"Authorization": f"Bearer {stack.token}"})
    assert answer.status_code == 401
    assert BOUND_AS_BEARER.split(":")[0] in answer.text
    # refused offline from the token's signed `binding` claim: the verifier was not asked
    assert refused_at(stack.verifier, before) == []
    assert stack.upstream.requests == []
