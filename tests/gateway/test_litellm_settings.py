"""The LiteLLM hook's settings: which URL a DPoP proof must name."""

from __future__ import annotations

import pytest

from envattest_gateway.litellm import LiteLLMSettings, request_url

BASE = {"ENVATTEST_VERIFIER_URL": "https://verifier.example", "ENVATTEST_GATEWAY_CREDENTIAL": "gw"}


def test_with_an_external_url_the_clients_host_header_is_not_used() -> None:
    settings = LiteLLMSettings.from_env({**BASE, "ENVATTEST_EXTERNAL_URL": "https://llm.example/"})
    assert request_url(settings, "/v1/chat/completions") == (
        "https://llm.example/v1/chat/completions"
    )


def test_without_one_no_url_is_made_up_from_the_request() -> None:
    assert request_url(LiteLLMSettings.from_env(BASE), "/v1/chat/completions") == ""


def test_an_external_url_that_is_not_http_is_refused_with_an_example() -> None:
    with pytest.raises(ValueError, match=r"clients use for this gateway, e\.g\. https://"):
        LiteLLMSettings.from_env({**BASE, "ENVATTEST_EXTERNAL_URL": "llm.example"})
