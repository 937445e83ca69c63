"""POST /v1/challenge and /v1/attest are answered by the edge layer on the event loop, and the
OpenAPI declarations of the same paths run the same implementation."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.api import protocol
from server.app import fast_routes
from server.errors import ProblemError
from tests.devices import EVIDENCE
from tests.server.inprocess import Verifier, build_verifier


@pytest.fixture(scope="module")
def verifier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Verifier]:
    built = build_verifier(
        tmp_path_factory.mktemp("routes") / "v",
        settings="rate_limit_per_minute = 0\ndevice_rate_limit_per_minute = 0\n",
    )
    try:
        yield built
    finally:
        built.runtime.store.engine.dispose()


def test_both_hot_paths_are_registered_with_the_edge_layer(verifier: Verifier) -> None:
    assert {("POST", "/v1/challenge"), ("POST", "/v1/attest")} <= set(fast_routes(verifier.runtime))


def test_a_cycle_runs_on_the_event_loop_thread_only(
    verifier: Verifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the attestation's spend and the device read are awaited: no request holds a thread
    seen: list[str] = []
    attest = verifier.runtime.verifier.attest

    async def recording(body: bytes) -> object:
        seen.append(threading.current_thread().name)
        return await attest(body)

    monkeypatch.setattr(verifier.runtime.verifier, "attest", recording)
    client = verifier.client()
    assert verifier.attest(client, verifier.evidence(client)) == 200
    assert seen
    assert not seen[0].startswith(("AnyIO worker", "ThreadPoolExecutor")), seen


@pytest.mark.parametrize(
    ("path", "body", "headers", "status"),
    [
        ("/v1/attest", b"x.y.z", {"Content-Type": "application/json"}, 415),
        ("/v1/attest", b"not evidence", EVIDENCE, 401),
        ("/v1/challenge", b'{"device_id": "dev_none"}', {"Content-Type": "application/json"}, 401),
    ],
)
def test_the_declared_route_and_the_hot_path_refuse_alike(
    verifier: Verifier, path: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    edge = verifier.client().post(path, content=body, headers=headers)
    assert edge.status_code == status, edge.text
    # the framework's own route for the path (behind the edge layer, never reached there),
    # in an application without the edge layer
    framework = FastAPI()
    framework.include_router(protocol.router(verifier.runtime))
    declared = TestClient(framework, raise_server_exceptions=True)
    with pytest.raises(ProblemError) as raised:
        declared.post(path, content=body, headers=headers)
    assert raised.value.status == status
    assert raised.value.to_problem() == edge.json()


def test_a_challenge_body_is_checked_against_the_declared_model(verifier: Verifier) -> None:
    client = verifier.client()
    for body, detail in [
        (b'{"device_id": ""}', "device_id: String should have at least 1 character"),
        (b'{"device_id": "d", "x": 1}', "x: Extra inputs are not permitted"),
        (b"", "body: Field required"),
        (b'{"device_id": 1e999}', "request body: the number 1e999 is out of range"),
    ]:
        answer = client.post(
            "/v1/challenge", content=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 400, body
        assert answer.json()["detail"].startswith(detail), answer.json()


def test_a_challenge_answer_is_the_declared_model(verifier: Verifier) -> None:
    answer = verifier.client().post("/v1/challenge", json={"device_id": verifier.device_id})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert set(answer.json()) == {"nonce", "expires_in"}
