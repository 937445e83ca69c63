"""A real HAProxy in front of an upstream, in the two documented modes:

``lua``  forward auth to a live verifier through packaging/gateways/haproxy/envattest-authz.lua
``jwt``  offline ``jwt_verify`` with the verifier's key exported by ``envattest-gateway jwks-pem``
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from tests._support import free_port, need_tool
from tests.gateway.docconfig import for_this_machine, tested_block
from tests.gateway.process import running_program
from tests.servers import REPO, clean_env

LUA_ACTION = REPO / "packaging" / "gateways" / "haproxy" / "envattest-authz.lua"
Mode = Literal["lua", "jwt"]


def haproxy_config(
    mode: Mode, run_dir: Path, *, port: int, verifier_port: int, upstream_port: int, issuer: str
) -> str:
    """The documented configuration for ``mode`` with this machine's addresses and paths."""
    common = {
        "bind :443 ssl crt /etc/haproxy/tls/gateway.pem": f"bind 127.0.0.1:{port}",
        "llm-backend.internal:8000": f"127.0.0.1:{upstream_port}",
    }
    if mode == "lua":
        return for_this_machine(
            tested_block("haproxy-lua"),
            {
                **common,
                "/etc/haproxy/envattest-authz.lua": str(LUA_ACTION),
                "verifier.internal:8080": f"127.0.0.1:{verifier_port}",
            },
        )
    return for_this_machine(
        tested_block("haproxy-jwt"),
        {
            **common,
            "/etc/haproxy/envattest-keys/current.pem": str(run_dir / "keys" / "current.pem"),
            "https://verifier.example": issuer,
        },
    )


def export_keys(verifier_url: str, out_dir: Path) -> None:
    """The documented key export: ``envattest-gateway jwks-pem``."""
    subprocess.run(
        [
            sys.executable, "-m", "envattest_gateway", "jwks-pem",
            "--jwks-url", f"{verifier_url}/.well-known/jwks.json", "--out-dir", str(out_dir),
        ],
        check=True, capture_output=True, env=clean_env(), cwd=REPO, timeout=60,
    )  # fmt: skip


@contextmanager
def running_haproxy(
    mode: Mode, run_dir: Path, *, verifier_url: str, upstream_port: int, issuer: str
) -> Iterator[str]:
    """HAProxy on a free loopback port; yields its base URL."""
    haproxy = need_tool("haproxy", "apt-get install haproxy")
    run_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    if mode == "jwt":
        export_keys(verifier_url, run_dir / "keys")
    conf = run_dir / "haproxy.cfg"
    conf.write_text(
        haproxy_config(
            mode,
            run_dir,
            port=port,
            verifier_port=int(verifier_url.rsplit(":", 1)[1]),
            upstream_port=upstream_port,
            issuer=issuer,
        )
    )
    argv = [haproxy, "-db", "-f", str(conf)]
    url = f"http://127.0.0.1:{port}"
    with running_program(argv, url=url, log=run_dir / "haproxy.log"):
        yield url


def haproxy_version() -> str:
    """``haproxy -v``, first line (for reports)."""
    haproxy = need_tool("haproxy", "apt-get install haproxy")
    done = subprocess.run([haproxy, "-v"], capture_output=True, text=True, check=False)
    return done.stdout.splitlines()[0]
