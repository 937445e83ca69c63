"""A real nginx in front of an upstream, with ``auth_request`` to a live verifier."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from tests._support import free_port, need_tool

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {run}/nginx.pid;
error_log {run}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;

    upstream envattest {{ server 127.0.0.1:{verifier_port}; }}

    server {{
        listen 127.0.0.1:{port};

        location / {{
            auth_request /_envattest_authz;
            auth_request_set $envattest_device $upstream_http_x_envattest_device;
            auth_request_set $envattest_key_class $upstream_http_x_envattest_key_class;
            # DPoP: pass the verifier's challenge and server nonce back to the client
            auth_request_set $envattest_challenge $upstream_http_www_authenticate;
            auth_request_set $envattest_dpop_nonce $upstream_http_dpop_nonce;
            add_header WWW-Authenticate $envattest_challenge always;
            add_header DPoP-Nonce $envattest_dpop_nonce always;
            proxy_set_header X-Envattest-Device $envattest_device;
            proxy_set_header X-Envattest-Key-Class $envattest_key_class;
            proxy_pass http://127.0.0.1:{upstream_port};
        }}

        location = /_envattest_authz {{
            internal;
            proxy_pass http://envattest/v1/authz;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
            # Authorization and X-Api-Key are passed on as they came
        }}
    }}
}}
"""


class _Upstream(BaseHTTPRequestHandler):
    seen: list[dict[str, str]]

    def do_GET(self) -> None:
        self.seen.append({k.lower(): v for k, v in self.headers.items()})
        body = b"upstream says hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.do_GET()

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
    conf.write_text(
        NGINX_CONF.format(
            run=run_dir, port=port, verifier_port=verifier_port, upstream_port=upstream_port
        )
    )
    log = (run_dir / "stderr.log").open("wb")
    process = subprocess.Popen(
        [nginx, "-p", str(run_dir), "-c", str(conf), "-e", str(run_dir / "error.log")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"nginx exited: {(run_dir / 'stderr.log').read_text()}"
                    f"{(run_dir / 'error.log').read_text()}"
                )
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise AssertionError("nginx did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
