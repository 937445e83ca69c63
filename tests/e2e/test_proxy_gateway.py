"""``envattest exec --via-proxy`` and ``envattest proxy`` with the real agent CLI, a real
verifier and real nginx ``auth_request`` in front of a paced SSE upstream.

The tool here is a small Python client that reads the base URL the wrapper gave it, the way
a coding tool would; the tests under Claude Code itself are in ``test_proxy_claude_code``.
"""

from __future__ import annotations

import json
import subprocess
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
from tests.conftest import AgentCli
from tests.gateway.nginx import running_nginx
from tests.server.support import token_claims
from tests.servers import VerifierProcess, clean_env, run_server_cli
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
def gateway(
    shared_verifier: VerifierProcess, stub: PacedSse, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = int(stub.url.rsplit(":", 1)[1])
    with running_nginx(
        tmp_path_factory.mktemp("nginx"), verifier_port=shared_verifier.port, upstream_port=port
    ) as url:
        yield url


def _enroll(agent_cli: AgentCli, verifier: VerifierProcess) -> None:
    manifest = httpx.get(f"{verifier.url}/v1/manifest").headers["ETag"].strip('"')
    init = agent_cli(
        "init", "--server", verifier.url, "--enroll-token", verifier.enroll_token(),
        "--accept-manifest", manifest, "--key", "software",
    )  # fmt: skip
    assert init.code == 0, init.stderr


def _device_id(agent_cli: AgentCli) -> str:
    status = json.loads(agent_cli("status", "--json").stdout)
    return str(status["device_id"])


def test_exec_via_proxy_streams_through_the_gateway_with_the_devices_token(
    shared_verifier: VerifierProcess,
    gateway: str,
    stub: PacedSse,
    agent_cli: AgentCli,
    tmp_path: Path,
) -> None:
    _enroll(agent_cli, shared_verifier)
    tool = tmp_path / "tool.py"
    tool.write_text(TOOL)
    stub.requests.clear()
    run = agent_cli(
        "exec", "--via-proxy", "--upstream", gateway, "--tool", "claude",
        "--", sys.executable, str(tool), "7",
    )  # fmt: skip
    assert run.code == 7, run.stderr  # the tool's exit code, passed through
    report = json.loads(run.stdout)
    # the tool was pointed at the loopback proxy, with the secret and a placeholder key
    assert report["base"].startswith("http://127.0.0.1:")
    assert report["key"] == PLACEHOLDER_KEY
    assert report["markers"] == [report["base"].rsplit("/", 1)[0], gateway]
    assert report["without_secret"] == 403
    # it reached the upstream through nginx auth_request, as this device
    assert report["status"] == 200
    assert report["body"] == "".join(event_bytes(i).decode() for i in range(stub.events))
    (seen,) = stub.requests
    assert seen.headers["x-envattest-device"] == _device_id(agent_cli)
    assert "sk-tool-own-key" not in repr(seen.headers)
    assert PLACEHOLDER_KEY not in repr(seen.headers)
    scheme, token = seen.headers["authorization"].split(" ", 1)
    assert token_claims(token)["sub"] == _device_id(agent_cli)
    if scheme == "DPoP":
        assert seen.headers["dpop"]
    # unbuffered through proxy and nginx: the first event long before the last
    arrivals = report["arrivals"]
    assert arrivals[-1] >= 3 * stub.interval_s
    assert arrivals[0] < arrivals[-1] - 2 * stub.interval_s, arrivals
    # the base-URL signal named the upstream, with source envattest-proxy, not loopback
    sent = [e for e in json.loads(agent_cli("log", "--json").stdout) if e["event"] == "sent"]
    reported = sent[-1]["claims"]["signals"]["baseurl.env"]
    gateway_port = int(gateway.rsplit(":", 1)[1])
    assert [(u["source"], u["provider"], u["port"]) for u in reported] == [
        ("envattest-proxy", "anthropic", gateway_port)
    ]


def test_a_revoked_device_is_stopped_at_the_next_request(
    shared_verifier: VerifierProcess, gateway: str, stub: PacedSse, agent_cli: AgentCli
) -> None:
    _enroll(agent_cli, shared_verifier)
    process = subprocess.Popen(
        [sys.executable, "-m", "agent", "--home", str(agent_cli.home), "proxy",
         "--upstream", gateway],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=clean_env(HOME=str(agent_cli.user_home)), cwd=agent_cli.project,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        base = process.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:"), process.stderr.read() if process.stderr else ""
        stub.requests.clear()
        assert httpx.post(base + "/v1/messages", content=b"{}").status_code == 200
        run_server_cli(
            ["devices", "revoke", "--data-dir", str(shared_verifier.data_dir),
             _device_id(agent_cli)]
        )  # fmt: skip
        refused = httpx.post(base + "/v1/messages", content=b"{}")
        assert refused.status_code == 401
        assert len(stub.requests) == 1  # the upstream never saw the second request
    finally:
        process.terminate()
        _, err = process.communicate(timeout=15)
    assert process.returncode == 0
    assert err.strip().endswith("envattest proxy: stopped")


def test_the_token_is_refreshed_before_it_expires(
    shared_verifier: VerifierProcess, gateway: str, stub: PacedSse, agent_cli: AgentCli
) -> None:
    _enroll(agent_cli, shared_verifier)
    home = AgentHome(agent_cli.home)
    context = CollectionContext(env={}, home=agent_cli.user_home, project_dir=agent_cli.project)
    proxy = device_proxy(
        home,
        load_key(home, home.enrollment()),
        upstream=Upstream.parse(gateway),
        context=replace(context, run=lambda _argv: None, interfaces=lambda: []),
        environ_for=lambda endpoint: marked_environment({}, endpoint),
        refresh_fraction=0.002,  # 900 s tokens: a refresh after about 2 s
    )
    endpoint = proxy.start()
    try:
        stub.requests.clear()
        assert httpx.post(endpoint.base_url + "/v1/m", content=b"{}").status_code == 200
        first = stub.requests[-1].headers["authorization"].split(" ", 1)[1]
        lifetime = token_claims(first)["exp"] - token_claims(first)["iat"]
        deadline = time.time() + 0.002 * lifetime + 10
        while time.time() < deadline:
            time.sleep(0.2)
            assert httpx.post(endpoint.base_url + "/v1/m", content=b"{}").status_code == 200
            latest = stub.requests[-1].headers["authorization"].split(" ", 1)[1]
            if latest != first:
                break
        assert latest != first, "no refresh happened"
        # the new token came while the old one still had most of its lifetime left
        assert token_claims(latest)["iat"] < token_claims(first)["exp"] - lifetime / 2
    finally:
        proxy.stop()
