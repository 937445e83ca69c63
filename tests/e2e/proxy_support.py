"""The stack the proxy tests run against: a verifier issuing DPoP-bound tokens, nginx
``auth_request`` in front of a stub API, and an agent home enrolled through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests._support import free_port
from tests.conftest import AgentCli
from tests.gateway.nginx import running_nginx
from tests.server.dpop_support import dpop_verifier
from tests.servers import VerifierProcess, clean_env
from tests.stubs.llm_api import StubLlmApi, running_llm_api


@dataclass(frozen=True)
class Gateway:
    """nginx's URL and the verifier behind its ``auth_request``."""

    url: str
    verifier: VerifierProcess


@contextmanager
def dpop_gateway(
    run_dir: Path, *, upstream_port: int, verifier_args: tuple[str, ...] = ()
) -> Iterator[Gateway]:
    """A DPoP verifier whose external URL is nginx's, and nginx in front of the upstream."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    verifier = dpop_verifier(run_dir / "verifier", authz_external_url=url).start(*verifier_args)
    try:
        with running_nginx(
            run_dir / "nginx", verifier_port=verifier.port, upstream_port=upstream_port, port=port
        ):
            yield Gateway(url, verifier)
    finally:
        verifier.stop()


@contextmanager
def api_behind_dpop_gateway(run_dir: Path) -> Iterator[tuple[Gateway, StubLlmApi]]:
    """The stub LLM API (answering "pong from the stub") behind ``dpop_gateway``."""
    with running_llm_api(reply="pong from the stub") as api:
        port = int(api.url.rsplit(":", 1)[1])
        with dpop_gateway(run_dir, upstream_port=port) as gateway:
            yield gateway, api


def enroll(agent_cli: AgentCli, verifier: VerifierProcess, *key_args: str) -> str:
    """``envattest init`` with the exact manifest hash; returns the device id."""
    manifest = httpx.get(f"{verifier.url}/v1/manifest").headers["ETag"].strip('"')
    init = agent_cli(
        "init", "--server", verifier.url, "--enroll-token", verifier.enroll_token(),
        "--accept-manifest", manifest, *(key_args or ("--key", "software")),
    )  # fmt: skip
    assert init.code == 0, init.stderr
    return str(json.loads(agent_cli("status", "--json").stdout)["device_id"])


@contextmanager
def proxy_process(agent_cli: AgentCli, upstream: str) -> Iterator[tuple[str, list[str]]]:
    """``envattest proxy --upstream URL`` running; yields its base URL and, after the block,
    its stderr lines (the second element fills in when it has stopped)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "agent", "--home", str(agent_cli.home), "proxy",
         "--upstream", upstream],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=clean_env(HOME=str(agent_cli.user_home)), cwd=agent_cli.project,
    )  # fmt: skip
    assert process.stdout is not None
    base = process.stdout.readline().strip()
    stderr: list[str] = []
    try:
        assert base.startswith("http://127.0.0.1:"), process.communicate(timeout=30)
        yield base, stderr
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
        stderr.extend(err.splitlines())
        stderr.append(f"exit {process.returncode}")
