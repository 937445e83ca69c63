"""Hostile bytes end in a 4xx problem document, never a 500, on every route that parses JSON
or a form: each vector of tests/vectors/json at each boundary, with the refusing step."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from attest.devicerequest import REQUEST_TYP, DeviceAction
from server.api.bodies import StrictJsonRoute
from server.errors import UnauthorizedError
from server.introspection import InactiveTokenError, Presented
from tests.attest.test_strictjson import REFUSALS
from tests.server.inprocess import Verifier, build_verifier

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
JSON_ROUTES = ("/v1/enroll/challenge", "/v1/enroll", "/v1/enroll/activate", "/v1/challenge")
SIGNATURE = base64.urlsafe_b64encode(b"\x01" * 64).rstrip(b"=").decode()


def _segment(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _vector(name: str) -> bytes:
    return (VECTORS / "json" / f"{name}.json").read_bytes()


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    doc: dict[str, object] = response.json()
    assert doc["type"] == f"urn:envattest:problem:{slug}"
    assert doc["status"] == status
    return doc


@pytest.fixture(scope="module")
def verifier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Verifier]:
    built = build_verifier(
        tmp_path_factory.mktemp("hostile") / "v",
        settings="rate_limit_per_minute = 0\ndevice_rate_limit_per_minute = 0\n",
    )
    try:
        yield built
    finally:
        built.runtime.store.engine.dispose()


@pytest.fixture(scope="module")
def client(verifier: Verifier) -> TestClient:
    return verifier.client()


@pytest.mark.parametrize("name", sorted(REFUSALS))
@pytest.mark.parametrize("route", JSON_ROUTES)
def test_model_bodies_refuse_hostile_json_with_400(
    client: TestClient, route: str, name: str
) -> None:
    response = client.post(
        route, content=_vector(name), headers={"Content-Type": "application/json"}
    )
    doc = assert_problem(response, 400, "invalid-request")
    assert f"request body: {REFUSALS[name]}" in str(doc["detail"])


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_evidence_payloads_are_refused_at_the_parse_step(
    verifier: Verifier, client: TestClient, name: str
) -> None:
    body = (VECTORS / "evidence" / f"payload-{name}.txt").read_bytes()
    response = client.post(
        "/v1/attest", content=body, headers={"Content-Type": "application/eat+jwt"}
    )
    assert_problem(response, 401, "attestation-rejected")
    record = verifier.last_audit()
    assert record.event == "attest.rejected"
    assert record.data is not None
    assert record.data["step"] == "parse"
    assert f"evidence payload: {REFUSALS[name]}" in str(record.data["reason"])


@pytest.mark.parametrize(
    "name", sorted(n for n in REFUSALS if (VECTORS / "evidence" / f"header-{n}.txt").exists())
)
def test_evidence_headers_are_refused_at_the_parse_step(
    verifier: Verifier, client: TestClient, name: str
) -> None:
    body = (VECTORS / "evidence" / f"header-{name}.txt").read_bytes()
    response = client.post(
        "/v1/attest", content=body, headers={"Content-Type": "application/eat+jwt"}
    )
    assert_problem(response, 401, "attestation-rejected")
    record = verifier.last_audit()
    assert record.data is not None
    assert record.data["step"] == "parse"
    assert f"JWS header: {REFUSALS[name]}" in str(record.data["reason"])


def _device_request(verifier: Verifier, payload: bytes) -> bytes:
    header = {"alg": "ES256", "typ": REQUEST_TYP, "kid": verifier.device_id}
    return f"{_segment(json.dumps(header).encode())}.{_segment(payload)}.{SIGNATURE}".encode()


@pytest.mark.parametrize("name", sorted(n for n in REFUSALS if len(_vector(n)) < 6000))
@pytest.mark.parametrize("action", list(DeviceAction))
def test_device_requests_refuse_hostile_payloads(
    verifier: Verifier, client: TestClient, action: DeviceAction, name: str
) -> None:
    body = _device_request(verifier, _vector(name))
    response = client.post(
        f"/v1/device/{action.value}",
        content=body,
        headers={"Content-Type": f"application/{REQUEST_TYP}"},
    )
    assert_problem(response, 401, "unauthorized")
    # (1) parse is the step that refused (device requests keep no audit record of a refusal)
    with pytest.raises(UnauthorizedError) as refused:
        verifier.runtime.devices.authenticate(body, action=action)
    assert f"device request payload: {REFUSALS[name]}" in refused.value.audit_detail


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_introspection_refuses_hostile_json(
    verifier: Verifier, client: TestClient, name: str
) -> None:
    response = client.post(
        "/v1/introspect",
        content=_vector(name),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {verifier.gateway_secret}",
        },
    )
    doc = assert_problem(response, 400, "invalid-request")
    assert f"introspection body: {REFUSALS[name]}" in str(doc["detail"])


@pytest.mark.parametrize(
    ("form", "words"),
    [
        (b"&".join(b"f%d=1" % i for i in range(9)), "more than 8 fields"),
        (b"token=a&token=b", "a field appears twice"),
        (b"token=%ff%fe", "not UTF-8"),
        (b"token=caf\xe9", "not UTF-8"),
    ],
)
def test_introspection_refuses_hostile_forms(
    verifier: Verifier, client: TestClient, form: bytes, words: str
) -> None:
    response = client.post(
        "/v1/introspect",
        content=form,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": f"Bearer {verifier.gateway_secret}",
        },
    )
    doc = assert_problem(response, 400, "invalid-request")
    assert words in str(doc["detail"])


@pytest.mark.parametrize("name", sorted(n for n in REFUSALS if len(_segment(_vector(n))) < 4000))
def test_forward_auth_refuses_tokens_with_hostile_headers(
    verifier: Verifier, client: TestClient, name: str
) -> None:
    token = f"{_segment(_vector(name))}.{_segment(b'{}')}.{SIGNATURE}"
    response = client.get("/v1/authz", headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    # (1) the token header is what refused, with the bound it broke
    checker = verifier.runtime.access.checker
    with pytest.raises(InactiveTokenError) as refused:
        asyncio.run(checker.check(Presented("bearer", token, None), target=None))
    assert refused.value.step == "token"
    assert f"JWS header: {REFUSALS[name]}" in refused.value.reason


def test_the_limiter_reads_hostile_evidence_without_failing(verifier: Verifier) -> None:
    # a device-limited verifier parses the JWS header itself, before the route does
    limited = build_verifier(
        verifier.runtime.config.data_dir.parent / "limited",
        settings="device_rate_limit_per_minute = 1\n",
    )
    client = limited.client()
    for path in sorted((VECTORS / "evidence").glob("header-*.txt")):
        response = client.post(
            "/v1/attest", content=path.read_bytes(), headers={"Content-Type": "application/eat+jwt"}
        )
        assert_problem(response, 401, "attestation-rejected")
    limited.runtime.store.engine.dispose()


def test_every_model_body_is_read_by_the_bounded_parser(verifier: Verifier) -> None:
    routes = list(verifier.app.routes)
    for included in [r for r in routes if hasattr(r, "original_router")]:
        routes += included.original_router.routes  # FastAPI's included routers
    with_bodies = [r for r in routes if isinstance(r, APIRoute) and r.body_field is not None]
    assert {r.path for r in with_bodies} >= set(JSON_ROUTES)
    for route in with_bodies:
        assert isinstance(route, StrictJsonRoute), f"{route.path}: APIRouter(route_class=...)"
