"""``envattest proxy`` toward an HTTPS gateway with a private CA: refused with what to do
without ``--ca-file``, streams with it; ``--port`` picks the loopback port."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._support import free_port
from tests.agent.tlsfixtures import PrivateCa, make_private_ca
from tests.conftest import AgentCli
from tests.e2e.proxy_support import enroll
from tests.servers import VerifierProcess, clean_env
from tests.stubs.paced_sse import PacedSse, event_bytes, paced_sse


@pytest.fixture
def tls_stub(tmp_path: Path) -> Iterator[tuple[PacedSse, PrivateCa]]:
    ca = make_private_ca(tmp_path / "ca")
    with paced_sse(events=2, interval_s=0.05, tls=(ca.server_cert, ca.server_key)) as stub:
        yield stub, ca


def _proxy(agent_cli: AgentCli, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "agent", "--home", str(agent_cli.home), "proxy", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=clean_env(HOME=str(agent_cli.user_home)), cwd=agent_cli.project,
    )  # fmt: skip


def _first_answer(process: subprocess.Popen[str]) -> tuple[str, httpx.Response]:
    assert process.stdout is not None
    try:
        base = process.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:"), process.communicate(timeout=30)
        return base, httpx.post(base + "/v1/messages", content=b"{}", timeout=30)
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_a_private_ca_gateway_needs_ca_file_and_port_is_honoured(
    verifier: VerifierProcess, tls_stub: tuple[PacedSse, PrivateCa], agent_cli: AgentCli
) -> None:
    stub, ca = tls_stub
    enroll(agent_cli, verifier)
    _, untrusted = _first_answer(_proxy(agent_cli, "--upstream", stub.url))
    assert untrusted.status_code == 502
    assert "pass --ca-file CA.pem" in untrusted.json()["error"]["message"]
    assert stub.requests == []
    port = free_port()
    base, trusted = _first_answer(
        _proxy(agent_cli, "--upstream", stub.url, "--ca-file", str(ca.ca_cert), "--port", str(port))
    )
    assert base.startswith(f"http://127.0.0.1:{port}/")
    assert trusted.status_code == 200
    assert trusted.content == event_bytes(0) + event_bytes(1)
    assert stub.requests[-1].headers["authorization"].startswith(("Bearer ", "DPoP "))
