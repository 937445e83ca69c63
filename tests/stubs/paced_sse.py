"""A stub upstream that streams server-sent events at a fixed pace, to measure buffering.

Every request gets ``events`` SSE events, ``interval_s`` apart, in chunked transfer encoding
with ``X-Accel-Buffering: no`` (so nginx passes each chunk on at once). A client that sees the
first event long before the last knows nothing in between held the stream back. Requests are
recorded with their headers, as in ``tests.stubs.llm_api``.

    with paced_sse(events=5, interval_s=0.2) as stub:
        ...  # GET/POST stub.url + "/anything"
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.stubs.llm_api import MAX_BODY, RecordedRequest


@dataclass
class PacedSse:
    """A running paced stream: its URL, its pace, and every request it received."""

    url: str
    events: int
    interval_s: float
    requests: list[RecordedRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, request: RecordedRequest) -> None:
        """Append one request (thread-safe)."""
        with self._lock:
            self.requests.append(request)


def event_bytes(index: int) -> bytes:
    """The ``index``-th event: ``data: event N`` and a blank line."""
    return b"event: tick\ndata: event %d\n\n" % index


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    stub: PacedSse

    def setup(self) -> None:
        super().setup()
        # as a real server would (nginx: tcp_nodelay on): no Nagle delay between the chunks
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.stub.record(RecordedRequest(self.command, self.path, headers, body))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Accel-Buffering", "no")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for index in range(self.stub.events):
            if index:
                time.sleep(self.stub.interval_s)
            chunk = event_bytes(index)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    do_GET = do_POST = _serve

    def log_message(self, *_args: object) -> None:
        pass


@contextmanager
def paced_sse(
    *, events: int = 5, interval_s: float = 0.2, tls: tuple[Path, Path] | None = None
) -> Iterator[PacedSse]:
    """The paced stream on a free 127.0.0.1 port until the block ends; HTTPS with ``tls``
    (certificate and key PEM files)."""
    stub = PacedSse(url="", events=events, interval_s=interval_s)
    handler = type("PacedHandler", (_Handler,), {"stub": stub})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    scheme = "http"
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    stub.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


__all__ = ["PacedSse", "event_bytes", "paced_sse"]
