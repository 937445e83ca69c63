"""A gateway on loopback whose every answer is a script, to test the proxy's upstream side:
which connection a request came on (and its number there), answers in pieces held until the
test releases them, and connections dropped at chosen moments.

    with scripted_gateway(lambda seen: Answer(body=b"ok")) as gw:
        ...  # gw.url; gw.seen lists (connection, nth on it, method, target, headers)
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import h11


@dataclass(frozen=True)
class Seen:
    """One request as the gateway received it."""

    connection: int
    nth: int
    """The request's number on its connection (1 for the first)."""
    method: str
    target: str
    headers: dict[str, str]


@dataclass
class Answer:
    """What to do with one request: answer (whole, or chunked piece by piece, each piece
    after its gate opens), drop the connection without answering, or close it right after."""

    status: int = 200
    body: bytes = b""
    pieces: list[tuple[threading.Event | None, bytes]] | None = None
    drop: bool = False
    close_after: bool = False


@dataclass
class ScriptedGateway:
    """The running gateway: its URL and every request it saw."""

    url: str
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0


Script = Callable[[Seen], Answer]


def _serve(sock: socket.socket, number: int, gateway: ScriptedGateway, script: Script) -> None:
    conn = h11.Connection(h11.SERVER)
    nth = 0
    with sock:
        while True:
            nth += 1
            request: h11.Request | None = None
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = sock.recv(65536)
                    conn.receive_data(data)
                    if not data and request is None:
                        return
                elif isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    break
            if request is None:
                return
            headers = {k.decode(): v.decode() for k, v in request.headers}
            seen = Seen(number, nth, request.method.decode(), request.target.decode(), headers)
            gateway.seen.append(seen)
            answer = script(seen)
            if answer.drop:
                return
            if answer.pieces is None:
                head = [(b"content-length", b"%d" % len(answer.body))]
                sock.sendall(conn.send(h11.Response(status_code=answer.status, headers=head)))
                sock.sendall(conn.send(h11.Data(data=answer.body)) + conn.send(h11.EndOfMessage()))
            else:
                head = [(b"content-type", b"text/event-stream")]
                sock.sendall(conn.send(h11.Response(status_code=answer.status, headers=head)))
                for gate, piece in answer.pieces:
                    if gate is not None and not gate.wait(10):
                        return
                    sock.sendall(conn.send(h11.Data(data=piece)))
                sock.sendall(conn.send(h11.EndOfMessage()))
            if answer.close_after:
                return
            conn.start_next_cycle()


@contextmanager
def scripted_gateway(script: Script) -> Iterator[ScriptedGateway]:
    """The gateway on a free 127.0.0.1 port, one thread per connection, until the block ends."""
    listener = socket.create_server(("127.0.0.1", 0))
    gateway = ScriptedGateway(url=f"http://127.0.0.1:{listener.getsockname()[1]}")
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            gateway.connections += 1
            args = (sock, gateway.connections, gateway, script)
            threading.Thread(target=_serve, args=args, daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield gateway
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        listener.close()
        thread.join(timeout=5)
