"""Reaching the gateway through the organisation's HTTP proxy: a ``CONNECT`` tunnel (RFC 9110
section 9.3.6) named by ``HTTPS_PROXY`` / ``https_proxy`` or ``ALL_PROXY``, unless ``NO_PROXY``
exempts the gateway. TLS to the gateway runs inside the tunnel, so the proxy sees neither the
token nor the proofs.

Only ``http://`` proxies are supported; a ``socks`` one is refused at start with what to do.
Plain-http gateways are loopback-only (``rewrite.Upstream``) and never go through a proxy.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from agent.proxy.h11client import GatewayError
from agent.proxy.pool import Origin, Streams, Tunnel
from agent.proxy.rewrite import UpstreamError


class ProxySettingError(UpstreamError):
    """The environment names a proxy the gateway connection cannot use."""


@dataclass(frozen=True)
class HttpProxy:
    """An HTTP proxy's address and, if the URL carries them, its Basic credentials."""

    host: str
    port: int
    authorization: bytes | None

    @property
    def label(self) -> str:
        """``host:port``, for messages (never the credentials)."""
        return f"{self.host}:{self.port}"


def _setting(env: Mapping[str, str], *names: str) -> str:
    for name in names:  # lower case first, as curl and Python's urllib read them
        for spelled in (name.lower(), name.upper()):
            if env.get(spelled, "").strip():
                return env[spelled].strip()
    return ""


def exempt(no_proxy: str, origin: Origin) -> bool:
    """Whether ``NO_PROXY`` names the gateway: ``*``, the host, a parent domain (``.corp`` or
    ``corp``), optionally with ``:port``."""
    host = origin.host.lower().strip("[]")
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        name, _, port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if port and port != str(origin.port):
            continue
        name = name.strip("[]").lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def gateway_proxy(env: Mapping[str, str], origin: Origin) -> HttpProxy | None:
    """The HTTP proxy on the way to ``origin`` under ``env``, or None for a direct connection."""
    if origin.scheme != "https":
        return None
    url = _setting(env, "https_proxy", "all_proxy")
    if not url or exempt(_setting(env, "no_proxy"), origin):
        return None
    if "://" not in url:
        url = "http://" + url
    try:
        parts = urlsplit(url)
        port = parts.port or 80
    except ValueError as exc:
        raise ProxySettingError(f"HTTPS_PROXY {url!r} is not a URL ({exc})") from None
    if parts.scheme != "http" or not parts.hostname:
        raise ProxySettingError(
            f"HTTPS_PROXY/ALL_PROXY names a {parts.scheme or 'schemeless'} proxy; the gateway "
            "connection supports http:// proxies only: set one, or exempt the gateway with "
            f"NO_PROXY={origin.host}"
        )
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = b"Basic " + base64.b64encode(pair)
    return HttpProxy(parts.hostname, port, authorization)


def tunnel_through(proxy: HttpProxy) -> Tunnel:
    """A ``Tunnel`` for ``ConnectionPool`` that opens each connection through ``proxy``."""

    async def connect(origin: Origin) -> Streams:
        return await connect_tunnel(proxy, origin)

    return connect


async def connect_tunnel(proxy: HttpProxy, origin: Origin) -> Streams:
    """A stream to ``origin`` through ``proxy`` (``CONNECT host:port``), ready for TLS."""
    try:
        reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    except OSError as exc:
        raise GatewayError(f"cannot reach the HTTP proxy {proxy.label} ({exc})") from exc
    host = f"[{origin.host}]" if ":" in origin.host else origin.host
    authority = f"{host}:{origin.port}".encode("ascii")
    request = b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n" % (authority, authority)
    if proxy.authorization is not None:
        request += b"Proxy-Authorization: " + proxy.authorization + b"\r\n"
    writer.write(request + b"\r\n")
    try:
        answer = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as exc:
        writer.close()
        raise GatewayError(f"the HTTP proxy {proxy.label} broke off the tunnel") from exc
    status_line = answer.split(b"\r\n", 1)[0].decode("latin-1")
    fields = status_line.split(" ", 2)
    if len(fields) < 2 or not fields[0].startswith("HTTP/1.") or not fields[1].startswith("2"):
        writer.close()
        raise GatewayError(
            f"the HTTP proxy {proxy.label} refused a tunnel to {authority.decode()}: "
            f"{status_line!r}; check HTTPS_PROXY (and its credentials) or NO_PROXY"
        )
    return reader, writer
