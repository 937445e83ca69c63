"""Routes answered by the edge layer itself, without the framework: the hot paths.

A hot path (challenge, attest, forward auth, introspection) is one ``async`` function from
the request scope and its whole body (already bounded by ``server.edge``) to a ``Reply``. It
runs on the event loop; it raises ``ProblemError`` for a refusal, which the edge layer
answers as a problem document like every other route's. Everything else still goes through
FastAPI, which also documents the hot paths (``server.openapi``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.types import Scope

JSON = b"application/json"


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete answer: status, body and its media type, extra headers."""

    status: int
    body: bytes = b""
    media_type: bytes | None = JSON
    headers: tuple[tuple[bytes, bytes], ...] = ()

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """The ASGI header list, with content type and length (none on a 204: RFC 9110
        section 8.6)."""
        headers = [] if self.status == 204 else [(b"content-length", str(len(self.body)).encode())]
        if self.media_type is not None:
            headers.append((b"content-type", self.media_type))
        headers.extend(self.headers)
        return headers


def json_reply(
    document: Any, status: int = 200, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> Reply:
    """``document`` as compact UTF-8 JSON (orjson: a reply is serialized on every request)."""
    return Reply(status, orjson.dumps(document), JSON, headers)


def header(scope: Scope, name: bytes) -> str:
    """The first value of header ``name`` (lower case), or ''."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


FastHandler = Callable[[Scope, bytes], Awaitable[Reply]]
FastRoutes = Mapping[tuple[str, str], FastHandler]  # (method, path) -> handler
