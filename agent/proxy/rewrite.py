"""What crosses the proxy: the upstream URL of a request, and the headers passed each way.

The tool's own credentials (``Authorization``, ``X-Api-Key``, the Azure and Gemini key
headers, any ``DPoP`` proof) never reach the gateway: the proxy sets the device's credential
in their place. Hop-by-hop headers (RFC 9110 section 7.6.1) stop here in both directions.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from agent.errors import AgentError
from agent.proxy.secret import SECRET_HEADER

Headers = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
TOOL_CREDENTIALS = frozenset(
    {b"authorization", b"x-api-key", b"api-key", b"x-goog-api-key", b"dpop"}
)
"""Credential headers coding tools send; all are dropped, the device's credential is set."""
_SET_BY_CLIENT = frozenset({b"host", b"content-length", b"expect", SECRET_HEADER.encode()})
"""Set by the proxy for the gateway (the body is complete before it is sent: no `Expect`)."""


class UpstreamError(AgentError):
    """The upstream URL given to the proxy cannot be used."""


@dataclass(frozen=True)
class Upstream:
    """The gateway the proxy forwards to: an origin and an optional base path."""

    origin: str
    base_path: str

    @classmethod
    def parse(cls, url: str) -> Upstream:
        """``https://gateway.example[/prefix]``; plain http only for a loopback gateway."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise UpstreamError(f"--upstream {url!r} is not a URL ({exc})") from None
        host = parts.hostname or ""
        if parts.scheme not in ("https", "http") or not host:
            raise UpstreamError(
                f"--upstream {url!r} must be an https:// URL of your organisation's gateway"
            )
        if parts.scheme == "http" and not _is_loopback(host):
            raise UpstreamError(
                f"--upstream {url!r} uses plain http; the proxy forwards tokens only over "
                "https (http is accepted for a gateway on this machine's loopback only)"
            )
        if parts.username or parts.password or parts.query or parts.fragment:
            raise UpstreamError(
                f"--upstream {url!r} must not carry credentials, a query or a fragment"
            )
        netloc = f"[{host}]" if ":" in host else host
        if port is not None:
            netloc = f"{netloc}:{port}"
        return cls(origin=f"{parts.scheme}://{netloc}", base_path=parts.path.rstrip("/"))

    @property
    def url(self) -> str:
        """The upstream as given (normalized)."""
        return self.origin + self.base_path

    def url_for(self, target: bytes) -> str:
        """The upstream URL of an origin-form request target (``/v1/messages?beta=true``)."""
        if not target.startswith(b"/"):
            raise UpstreamError("only origin-form request targets are forwarded")
        return self.origin + self.base_path + target.decode("ascii", errors="strict")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    return frozenset(
        token.strip().lower()
        for name, value in headers
        if name.lower() == b"connection"
        for token in value.split(b",")
    )


def request_headers(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """The tool's request headers minus hop-by-hop, credentials and what the client sets."""
    headers = list(headers)
    dropped = HOP_BY_HOP | TOOL_CREDENTIALS | _SET_BY_CLIENT | _connection_tokens(headers)
    return [(name, value) for name, value in headers if name.lower() not in dropped]


def response_headers(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """The gateway's response headers minus hop-by-hop ones; bodies pass through encoded."""
    headers = list(headers)
    dropped = HOP_BY_HOP | _connection_tokens(headers)
    return [(name, value) for name, value in headers if name.lower() not in dropped]
