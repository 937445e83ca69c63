"""A real nginx in front of an upstream, with ``auth_request`` to a live verifier.

The server block is the one documented in docs/gateways.md (``<!-- tested: nginx -->``);
only addresses, the TLS lines and the temp paths are this machine's.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests._support import free_port, need_tool
from tests.gateway.docconfig import for_this_machine, tested_block
from tests.gateway.process import running_program

# Around the documented block: what a test run needs (foreground, its own pid and logs).
_FRAME = """\
{user}worker_processes 1;
daemon off;
pid {run}/nginx.pid;
error_log {run}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;

{block}
}}
"""
WORKER_USER = "nobody"


def nginx_config(
    run_dir: Path, *, port: int, verifier_port: int, upstream_port: int, user: str, tmp: Path
) -> str:
    """The documented configuration with this machine's addresses and temp paths."""
    block = for_this_machine(
        tested_block("nginx"),
        {
            "verifier.internal:8080": f"127.0.0.1:{verifier_port}",
            "llm-backend.internal:8000": f"127.0.0.1:{upstream_port}",
            "listen 443 ssl;": f"listen 127.0.0.1:{port};",
            "    ssl_certificate     /etc/nginx/tls/gateway.crt;\n": "",
            "    ssl_certificate_key /etc/nginx/tls/gateway.key;\n": "",
        },
    )
    indented = "".join(f"    {line}" if line.strip() else line for line in block.splitlines(True))
    return _FRAME.format(user=user, run=run_dir, tmp=tmp, block=indented)


@contextmanager
def _worker_temp_dir(run_dir: Path) -> Iterator[tuple[str, Path]]:
    """The ``user`` line and a temp directory nginx's workers can write.

    As root, workers drop to WORKER_USER, so their temp paths must be its own
    (docs/gateways.md, "Request bodies over 16 KiB"); pytest's directories are not.
    """
    if os.geteuid() != 0:
        yield "", run_dir / "tmp"
        return
    worker = pwd.getpwnam(WORKER_USER)
    tmp = Path(tempfile.mkdtemp(prefix="envattest-nginx-"))
    os.chown(tmp, worker.pw_uid, worker.pw_gid)
    try:
        yield f"user {WORKER_USER} {grp.getgrgid(worker.pw_gid).gr_name};\n", tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _Upstream(BaseHTTPRequestHandler):
    seen: list[dict[str, str]]

    def do_GET(self) -> None:
        self.seen.append({k.lower(): v for k, v in self.headers.items()})
        body = b"upstream says hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@contextmanager
def upstream_server() -> Iterator[tuple[int, list[dict[str, str]]]]:
    """A tiny HTTP server on loopback that records the headers it receives."""
    seen: list[dict[str, str]] = []
    handler = type("Upstream", (_Upstream,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def running_nginx(
    run_dir: Path, *, verifier_port: int, upstream_port: int, port: int | None = None
) -> Iterator[str]:
    """nginx on a loopback port (free unless given); yields its base URL."""
    nginx = need_tool("nginx", "apt-get install nginx-light")
    run_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = run_dir / "nginx.conf"
    with _worker_temp_dir(run_dir) as (user, tmp):
        conf.write_text(
            nginx_config(
                run_dir,
                port=port,
                verifier_port=verifier_port,
                upstream_port=upstream_port,
                user=user,
                tmp=tmp,
            )
        )
        argv = [nginx, "-p", str(run_dir), "-c", str(conf), "-e", str(run_dir / "error.log")]
        url = f"http://127.0.0.1:{port}"
        with running_program(argv, url=url, log=run_dir / "stderr.log"):
            yield url


def nginx_version() -> str:
    """``nginx -v`` as one line (for reports)."""
    nginx = need_tool("nginx", "apt-get install nginx-light")
    done = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False)
    return done.stderr.strip()
