"""A whole deployment on loopback for a real coding tool: verifier, nginx (the documented
configuration) in front of the stub LLM API, and an enrolled agent whose ``envattest`` is on
the tool's PATH, exactly as docs/install.md tells a developer to set it up.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.gateway.nginx import running_nginx
from tests.servers import REPO, VerifierProcess, clean_env, init_verifier, run_server_cli
from tests.stubs.llm_api import StubLlmApi, running_llm_api

TOKEN_TTL_S = 60  # the shortest lifetime a policy allows: expiry within a test


@dataclass(frozen=True)
class Stack:
    """What a coding-tool test talks to."""

    verifier: VerifierProcess
    gateway_url: str
    upstream: StubLlmApi
    user_home: Path
    bin_dir: Path
    agent_home: Path

    def tool_env(self, **extra: str) -> dict[str, str]:
        """A clean environment for the tool: its own HOME, ``envattest`` first on PATH."""
        path = f"{self.bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        return clean_env(HOME=str(self.user_home), PATH=path, **extra)

    def envattest(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the agent CLI as the developer would."""
        return subprocess.run(
            [str(self.bin_dir / "envattest"), *args],
            capture_output=True, text=True, env=self.tool_env(), check=False, timeout=60,
        )  # fmt: skip

    def device_id(self) -> str:
        """The enrolled device (from ``envattest status --json``)."""
        import json

        status = json.loads(self.envattest("status", "--json").stdout)
        return str(status["device_id"])

    def revoke(self) -> None:
        """The administrator revokes this device."""
        run_server_cli(
            ["devices", "revoke", "--data-dir", str(self.verifier.data_dir), self.device_id()]
        )


def _short_lived_tokens(verifier: VerifierProcess) -> None:
    policy = verifier.data_dir / "policy.toml"
    text = policy.read_text()
    assert "ttl_s = 900" in text, "the default policy changed: update TOKEN_TTL_S handling"
    policy.write_text(text.replace("ttl_s = 900", f"ttl_s = {TOKEN_TTL_S}"))


def _envattest_wrapper(bin_dir: Path, agent_home: Path) -> None:
    # stands in for the installed binary: same CLI, this checkout, this test's agent state
    bin_dir.mkdir(parents=True)
    wrapper = bin_dir / "envattest"
    wrapper.write_text(
        f'#!/bin/sh\nPYTHONPATH="{REPO}" exec "{sys.executable}" -m agent '
        f'--home "{agent_home}" "$@"\n'
    )
    wrapper.chmod(0o755)


@contextmanager
def running_stack(root: Path) -> Iterator[Stack]:
    """Verifier (60 s tokens), stub API behind nginx, and an enrolled software-key agent."""
    verifier = init_verifier(root / "verifier")
    _short_lived_tokens(verifier)
    verifier.start()
    try:
        with (
            running_llm_api() as upstream,
            running_nginx(
                root / "nginx",
                verifier_port=verifier.port,
                upstream_port=int(upstream.url.rsplit(":", 1)[1]),
            ) as gateway_url,
        ):
            stack = Stack(
                verifier=verifier,
                gateway_url=gateway_url,
                upstream=upstream,
                user_home=root / "home",
                bin_dir=root / "bin",
                agent_home=root / "agent",
            )
            stack.user_home.mkdir()
            _envattest_wrapper(stack.bin_dir, stack.agent_home)
            manifest = httpx.get(f"{verifier.url}/v1/manifest").headers["ETag"].strip('"')
            init = stack.envattest(
                "init", "--server", verifier.url, "--enroll-token", verifier.enroll_token(),
                "--accept-manifest", manifest, "--key", "software",
            )  # fmt: skip
            assert init.returncode == 0, init.stderr
            yield stack
    finally:
        verifier.stop()


__all__ = ["TOKEN_TTL_S", "Stack", "running_stack"]
