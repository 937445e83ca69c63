"""A minimal HTTP/1.1 client on asyncio streams for load generation: one keep-alive
connection per simulated client, requests pre-encoded as bytes, responses read by
Content-Length. Just enough HTTP for the verifier's answers, at a few microseconds of CPU
per request (a general client spends milliseconds, which would be the figure measured)."""

from __future__ import annotations

import asyncio


class HttpError(Exception):
    """A response this client cannot read (no Content-Length, chunked, closed)."""


def encode_request(
    method: str, path: str, *, host: str, headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> bytes:  # fmt: skip
    """The request's bytes: keep-alive, Content-Length for a body."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    """One keep-alive connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        """Connect."""
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send one request, return (status, body)."""
        self._writer.write(raw)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 2)
            length = int(lower[at + 17 : end])
        elif b"\r\ntransfer-encoding:" in lower:
            raise HttpError("chunked responses are not supported by the load client")
        body = await self._reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        """Close the socket."""
        self._writer.close()
