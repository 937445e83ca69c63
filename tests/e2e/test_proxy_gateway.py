"""``envattest exec --via-proxy`` and ``envattest proxy`` with the real agent CLI, a real
verifier and real nginx ``auth_request`` in front of a paced SSE upstream.

The tool here is a small Python client that reads the base URL the wrapper gave it, the way
a coding tool would; the tests under Claude Code itself are in ``test_proxy_claude_code``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from agent.collectors import CollectionContext
from agent.devicekey import load_key
from agent.home import AgentHome
from agent.proxy.device import device_proxy
from agent.proxy.rewrite import Upstream
from agent.proxy.toolenv import PLACEHOLDER_KEY, marked_environment
from attest.dpop import verify_proof
from attest.keys.software import SoftwareKey
from tests.conftest import AgentCli
from tests.e2e.proxy_support import Gateway, dpop_gateway, enroll, proxy_process
from tests.server.dpop_support import proof, refusals, refused_at
from tests.server.support import token_claims
from tests.servers import run_server_cli
from tests.stubs.llm_api import RecordedRequest
from tests.stubs.paced_sse import PacedSse, event_bytes, paced_sse

TOOL = """\
import json, os, sys, time, httpx
base = os.environ["ANTHROPIC_BASE_URL"]
report = {"base": base, "key": os.environ.get("ANTHROPIC_API_KEY"),
          "markers": [os.environ.get("ENVATTEST_PROXY_LISTEN"),
                      os.environ.get("ENVATTEST_PROXY_UPSTREAM")]}
start = time.perf_counter()
arrivals, body = [], b""
with httpx.stream("POST", base + "/v1/messages", content=b"{}",
                  headers={"x-api-key": "sk-tool-own-key"}, timeout=30) as answer:
    report["status"] = answer.status_code
    for chunk in answer.iter_raw():
        arrivals.append(time.perf_counter() - start)
        body += chunk
report["arrivals"], report["body"] = arrivals, body.decode()
listen = os.environ["ENVATTEST_PROXY_LISTEN"]
report["without_secret"] = httpx.post(listen + "/v1/messages", content=b"{}").status_code
print(json.dumps(report))
sys.exit(int(sys.argv[1]))
"""


@pytest.fixture(scope="module")
def stub() -> Iterator[PacedSse]:
    with paced_sse(events=4, interval_s=0.25) as api:
        yield api


@pytest.fixture(scope="module")
def gateway(stub: PacedSse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    port = int(stub.url.rsplit(":", 1)[1])
    with dpop_gateway(tmp_path_factory.mktemp("stack"), upstream_port=port) as gw:
        yield gw


def _assert_bound(seen: RecordedRequest, device_id: str, method: str, url: str) -> str:
    """The request carried a DPoP-bound token of ``device_id`` and a valid proof for it."""
    scheme, token = seen.headers["authorization"].split(" ", 1)
    assert scheme == "DPoP"
    claims = token_claims(token)
    assert claims["sub"] == device_id
    verify_proof(
        seen.headers["dpop"], expected_htm=method, expected_htu=url,
        expected_jkt=claims["cnf"]["jkt"], access_token=token, now=time.time(),
    )  # fmt: skip
    return token


def test_exec_via_proxy_streams_through_the_gateway_with_the_devices_token(
    gateway: Gateway, stub: PacedSse, agent_cli: AgentCli, tmp_path: Path
) -> None:
    device_id = enroll(agent_cli, gateway.verifier)
    tool = tmp_path / "tool.py"
    tool.write_text(TOOL)
    stub.requests.clear()
    run = agent_cli(
        "exec", "--via-proxy", "--upstream", gateway.url, "--tool", "claude",
        "--", sys.executable, str(tool), "7",
    )  # fmt: skip
    assert run.code == 7, run.stderr  # the tool's exit code, passed through
    report = json.loads(run.stdout)
    # the tool was pointed at the loopback proxy, with the secret and a placeholder key
    assert report["base"].startswith("http://127.0.0.1:")
    assert report["key"] == PLACEHOLDER_KEY
    assert report["markers"] == [report["base"].rsplit("/", 1)[0], gateway.url]
    assert report["without_secret"] == 403
    # it reached the upstream through nginx auth_request, as this device, with a proof
    assert report["status"] == 200
    assert report["body"] == "".join(event_bytes(i).decode() for i in range(stub.events))
    (seen,) = stub.requests
    assert seen.headers["x-envattest-device"] == device_id
    assert "sk-tool-own-key" not in repr(seen.headers)
    assert PLACEHOLDER_KEY not in repr(seen.headers)
    _assert_bound(seen, device_id, "POST", gateway.url + "/v1/messages")
    # unbuffered through proxy and nginx: the first event long before the last
    arrivals = report["arrivals"]
    assert arrivals[-1] >= 3 * stub.interval_s
    assert arrivals[0] < arrivals[-1] - 2 * stub.interval_s, arrivals
    # the base-URL signal named the upstream, with source envattest-proxy, not loopback
    sent = [e for e in json.loads(agent_cli("log", "--json").stdout) if e["event"] == "sent"]
    reported = sent[-1]["claims"]["signals"]["baseurl.env"]
    gateway_port = int(gateway.url.rsplit(":", 1)[1])
    assert [(u["source"], u["provider"], u["port"]) for u in reported] == [
        ("envattest-proxy", "anthropic", gateway_port)
    ]


def test_a_copied_token_is_useless_without_the_device_key(
    gateway: Gateway, stub: PacedSse, agent_cli: AgentCli, tmp_path: Path
) -> None:
    device_id = enroll(agent_cli, gateway.verifier)
    with proxy_process(agent_cli, gateway.url) as (base, _):
        stub.requests.clear()
        assert httpx.post(base + "/v1/messages", content=b"{}").status_code == 200
    token = _assert_bound(stub.requests[-1], device_id, "POST", gateway.url + "/v1/messages")
    thief = SoftwareKey.create(tmp_path / "thief.pem")
    stub.requests.clear()
    before = refusals(gateway.verifier)
    for headers in (
        {"Authorization": f"Bearer {token}"},
        {"Authorization": f"DPoP {token}",
         "DPoP": proof(thief, token, "POST", gateway.url + "/v1/messages")},
    ):  # fmt: skip
        answer = httpx.post(gateway.url + "/v1/messages", content=b"{}", headers=headers)
        assert answer.status_code == 401
    assert stub.requests == []
    assert refused_at(gateway.verifier, before) == ["authz:dpop.jkt", "authz:dpop.scheme"]


def test_a_revoked_device_is_stopped_at_the_next_request(
    gateway: Gateway, stub: PacedSse, agent_cli: AgentCli
) -> None:
    device_id = enroll(agent_cli, gateway.verifier)
    with proxy_process(agent_cli, gateway.url) as (base, stderr):
        stub.requests.clear()
        assert httpx.post(base + "/v1/messages", content=b"{}").status_code == 200
        run_server_cli(
            ["devices", "revoke", "--data-dir", str(gateway.verifier.data_dir), device_id]
        )
        assert httpx.post(base + "/v1/messages", content=b"{}").status_code == 401
        # the proxy dropped the refused token; attesting again is refused with the reason
        again = httpx.post(base + "/v1/messages", content=b"{}")
        assert again.status_code == 403
        assert "revoked" in again.json()["error"]["message"]
        assert len(stub.requests) == 1  # the upstream never saw the later requests
    assert stderr[-2:] == ["envattest proxy: stopped", "exit 0"]


def test_the_token_is_refreshed_before_it_expires(
    gateway: Gateway, stub: PacedSse, agent_cli: AgentCli
) -> None:
    device_id = enroll(agent_cli, gateway.verifier)
    home = AgentHome(agent_cli.home)
    context = CollectionContext(env={}, home=agent_cli.user_home, project_dir=agent_cli.project)
    proxy = device_proxy(
        home,
        load_key(home, home.enrollment()),
        upstream=Upstream.parse(gateway.url),
        context=replace(context, run=lambda _argv: None, interfaces=lambda: []),
        environ_for=lambda endpoint: marked_environment({}, endpoint),
        refresh_fraction=0.002,  # 900 s tokens: a refresh after about 2 s
    )
    endpoint = proxy.start()
    try:
        stub.requests.clear()
        assert httpx.post(endpoint.base_url + "/v1/m", content=b"{}").status_code == 200
        first = _assert_bound(stub.requests[-1], device_id, "POST", gateway.url + "/v1/m")
        lifetime = token_claims(first)["exp"] - token_claims(first)["iat"]
        deadline = time.time() + 0.002 * lifetime + 10
        latest = first
        while latest == first and time.time() < deadline:
            time.sleep(0.2)
            assert httpx.post(endpoint.base_url + "/v1/m", content=b"{}").status_code == 200
            latest = _assert_bound(stub.requests[-1], device_id, "POST", gateway.url + "/v1/m")
        assert latest != first, "no refresh happened"
        # the new token came while the old one still had most of its lifetime left
        assert token_claims(latest)["iat"] < token_claims(first)["exp"] - lifetime / 2
    finally:
        proxy.stop()
