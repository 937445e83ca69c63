"""The edge layer answers hot paths itself: replies, refusals and faults as problem
documents, the request id on every answer, and everything else still reaches the app."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Scope

from server.edge import EdgeLayer
from server.errors import AccessDeniedError
from server.fastroutes import Reply, header, json_reply
from server.limits import ClientAddresses
from server.metrics import Metrics
from server.ratelimit import RateLimits, TokenBucketLimiter


async def _echo(scope: Scope, body: bytes) -> Reply:
    return json_reply({"body": body.decode(), "agent": header(scope, b"user-agent")}, 201)


async def _refuse(_scope: Scope, _body: bytes) -> Reply:
    raise AccessDeniedError("denied here")


async def _fault(_scope: Scope, _body: bytes) -> Reply:
    raise RuntimeError("a bug")


def _client() -> TestClient:
    app = FastAPI()

    @app.get("/framework")
    def framework() -> dict[str, str]:
        return {"via": "framework"}

    edge = EdgeLayer(
        app,
        addresses=ClientAddresses(()),
        limits=RateLimits(per_address=TokenBucketLimiter(0), per_device=TokenBucketLimiter(0)),
        metrics=Metrics(),
        routes={"/echo", "/refuse", "/fault", "/framework"},
        max_body_bytes=1024,
        body_timeout_s=5,
        fast_routes={
            ("POST", "/echo"): _echo,
            ("GET", "/refuse"): _refuse,
            ("GET", "/fault"): _fault,
        },
    )
    return TestClient(edge, raise_server_exceptions=False)


def test_a_fast_route_answers_with_its_reply_and_a_request_id() -> None:
    answer = _client().post("/echo", content=b"hello", headers={"user-agent": "t/1"})
    assert answer.status_code == 201
    assert answer.json() == {"body": "hello", "agent": "t/1"}
    assert answer.headers["content-type"] == "application/json"
    assert len(answer.headers["x-request-id"]) == 16


def test_a_sane_request_id_is_kept_and_a_hostile_one_replaced() -> None:
    client = _client()
    kept = client.post("/echo", content=b"", headers={"x-request-id": "gw-42"})
    assert kept.headers["x-request-id"] == "gw-42"
    replaced = client.post("/echo", content=b"", headers={"x-request-id": "a b\\c"})
    assert replaced.headers["x-request-id"] != "a b\\c"
    assert client.get("/framework").headers["x-request-id"]


def test_a_refusal_is_a_problem_document() -> None:
    answer = _client().get("/refuse")
    assert answer.status_code == 403
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == "denied here"


def test_a_fault_is_a_500_problem_without_the_traceback() -> None:
    answer = _client().get("/fault")
    assert answer.status_code == 500
    assert answer.json()["type"] == "urn:envattest:problem:internal-error"
    assert "a bug" not in answer.text


def test_other_routes_and_methods_reach_the_application() -> None:
    client = _client()
    assert client.get("/framework").json() == {"via": "framework"}
    assert client.get("/echo").status_code == 404  # only POST /echo is a fast route
