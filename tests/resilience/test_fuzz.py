"""Fuzzing: untrusted bytes never crash the parser or the server, and never buy a token.

Seeded with every vector in tests/vectors/evidence and tests/vectors/json: each seed is an
explicit example of the parser tests, and the generated bodies include the seeds and splices
of them. ``ENVATTEST_FUZZ_EXAMPLES`` raises the number of examples (default 200).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from attest.b64 import b64url_encode
from attest.devicerequest import parse_device_request
from attest.errors import AlgorithmError, FormatError
from attest.evidence import parse_evidence
from attest.strictjson import parse_json
from tests.servers import REPO, VerifierProcess

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
SEEDS = [
    path.read_bytes()
    for pattern in ("tests/vectors/evidence/*.txt", "tests/vectors/json/*.json")
    for path in sorted(REPO.glob(pattern))
]
spliced_seeds = st.builds(
    lambda seed, at, insert, cut: seed[:at] + insert + seed[at + cut :],
    st.sampled_from(SEEDS),
    st.integers(0, 4096),
    st.binary(max_size=16),
    st.integers(0, 16),
)
bodies = (
    st.sampled_from(SEEDS)
    | spliced_seeds
    | st.binary(max_size=2048)
    | jws_like
    | json_values.map(lambda v: json.dumps(v).encode())
)


def seeded(test: Any) -> Any:
    """Every seed vector as an explicit example of a one-argument test."""
    for seed in SEEDS:
        test = example(seed)(test)
    return test


@FUZZ
@seeded
@given(bodies)
def test_evidence_parser_raises_only_its_own_errors(body: bytes) -> None:
    with contextlib.suppress(FormatError, AlgorithmError):
        parse_evidence(body)


@FUZZ
@seeded
@given(bodies)
def test_device_request_parser_raises_only_its_own_errors(body: bytes) -> None:
    with contextlib.suppress(FormatError, AlgorithmError):
        parse_device_request(body)


@FUZZ
@seeded
@given(bodies)
def test_bounded_json_raises_only_format_errors(body: bytes) -> None:
    with contextlib.suppress(FormatError):
        parse_json(body)


def _depth(doc: Any) -> int:
    if isinstance(doc, dict):
        return 1 + max(map(_depth, doc.values()), default=0)
    if isinstance(doc, list):
        return 1 + max(map(_depth, doc), default=0)
    return 0


def _numbers(doc: Any) -> Iterator[int | float]:
    if isinstance(doc, dict):
        doc = list(doc.values())
    if isinstance(doc, list):
        for item in doc:
            yield from _numbers(item)
    elif isinstance(doc, int | float) and not isinstance(doc, bool):
        yield doc


@FUZZ
@given(json_values)
def test_bounded_json_reads_what_json_writes(doc: Any) -> None:
    raw = json.dumps(doc, ensure_ascii=False).encode()
    if any(
        len(json.dumps(n)) > 32 for n in _numbers(doc)
    ):  # only a number bound may refuse what json writes here
        with pytest.raises(FormatError, match="more than 32 characters"):
            parse_json(raw)
        return
    assert parse_json(raw) == json.loads(raw)


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
