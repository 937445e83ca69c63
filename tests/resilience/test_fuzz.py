"""Fuzzing: untrusted bytes never crash the parser or the server, and never buy a token.

``ENVATTEST_FUZZ_EXAMPLES`` raises the number of examples (default 200) for a longer run.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attest.b64 import b64url_encode
from attest.errors import AlgorithmError, FormatError
from attest.evidence import parse_evidence
from tests.servers import VerifierProcess

EXAMPLES = int(os.environ.get("ENVATTEST_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
ENDPOINTS = ("/v1/enroll", "/v1/challenge", "/v1/attest", "/v1/device/whoami")
MEDIA_TYPES = (
    "application/json",
    "application/eat+jwt",
    "application/envattest-request+jwt",
    "text/plain",
    "",
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner),
    max_leaves=20,
)


def _segment(value: Any) -> str:
    return b64url_encode(json.dumps(value).encode())


# Three-part tokens whose header and payload are JSON: gets past the first checks more often.
jws_like = st.builds(
    lambda h, p, s: f"{_segment(h)}.{_segment(p)}.{s}".encode(),
    st.fixed_dictionaries(
        {"alg": st.sampled_from(["ES256", "none", "HS256", "RS256"]), "typ": st.just("eat+jwt")},
        optional={"kid": st.text(max_size=30)},
    ),
    st.dictionaries(
        st.sampled_from(
            ["eat_nonce", "iat", "sub", "eat_profile", "swname", "swversion", "consent", "signals"]
        ),
        json_values,
    ),
    st.text(alphabet="ABCDEFabcdef0123456789-_", max_size=90),
)
bodies = st.binary(max_size=2048) | jws_like | json_values.map(lambda v: json.dumps(v).encode())


@FUZZ
@given(bodies)
def test_evidence_parser_raises_only_its_own_errors(body: bytes) -> None:
    with contextlib.suppress(FormatError, AlgorithmError):
        parse_evidence(body)


@pytest.fixture(scope="module")
def client(open_verifier: VerifierProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=open_verifier.url, timeout=10) as http:
        yield http


def _assert_refused(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "access_token" not in response.text


@FUZZ
@given(st.sampled_from(ENDPOINTS), st.sampled_from(MEDIA_TYPES), bodies)
def test_endpoints_answer_random_bodies_with_a_problem(
    client: httpx.Client, endpoint: str, media_type: str, body: bytes
) -> None:
    headers = {"Content-Type": media_type} if media_type else {}
    _assert_refused(client.post(endpoint, content=body, headers=headers))


@FUZZ
@given(st.sampled_from(ENDPOINTS), json_values)
def test_endpoints_answer_random_json_with_a_problem(
    client: httpx.Client, endpoint: str, doc: Any
) -> None:
    _assert_refused(client.post(endpoint, json=doc))


@FUZZ
@given(
    st.fixed_dictionaries(
        {
            "enrollment_token": json_values,
            "public_jwk": json_values,
            "key_attestation": json_values,
        }
    )
)
def test_enroll_with_wrong_shapes_is_refused(client: httpx.Client, doc: dict[str, Any]) -> None:
    _assert_refused(client.post("/v1/enroll", json=doc))
