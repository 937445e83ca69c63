"""A real Caddy with ``forward_auth`` to a live verifier (docs/gateways.md, tested: caddy)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests._support import free_port, need_tool
from tests.gateway.docconfig import for_this_machine, tested_block
from tests.gateway.process import running_program

# Around the documented site block: no admin endpoint, no automatic HTTPS on a test port.
_GLOBAL = "{\n\tadmin off\n\tauto_https off\n}\n\n"


def caddy_config(*, port: int, verifier_port: int, upstream_port: int) -> str:
    """The documented Caddyfile with this machine's addresses."""
    return _GLOBAL + for_this_machine(
        tested_block("caddy"),
        {
            "llm-gateway.example.internal {": f"http://127.0.0.1:{port} {{",
            "verifier.internal:8080": f"127.0.0.1:{verifier_port}",
            "llm-backend.internal:8000": f"127.0.0.1:{upstream_port}",
        },
    )


@contextmanager
def running_caddy(run_dir: Path, *, verifier_port: int, upstream_port: int) -> Iterator[str]:
    """Caddy on a free loopback port; yields its base URL."""
    caddy = need_tool("caddy", "apt-get install caddy")
    run_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = run_dir / "Caddyfile"
    conf.write_text(
        caddy_config(port=port, verifier_port=verifier_port, upstream_port=upstream_port)
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(run_dir),
        "XDG_CONFIG_HOME": str(run_dir / "config"),
        "XDG_DATA_HOME": str(run_dir / "data"),
    }
    argv = [caddy, "run", "--config", str(conf), "--adapter", "caddyfile"]
    url = f"http://127.0.0.1:{port}"
    with running_program(argv, url=url, log=run_dir / "caddy.log", env=env):
        yield url


def caddy_version() -> str:
    """``caddy version`` (for reports)."""
    caddy = need_tool("caddy", "apt-get install caddy")
    return subprocess.run(
        [caddy, "version"], capture_output=True, text=True, check=False
    ).stdout.strip()
