"""Reaching the gateway through the organisation's proxy named by ``HTTPS_PROXY`` /
``https_proxy`` or ``ALL_PROXY``, unless ``NO_PROXY`` exempts the gateway: an ``http://`` proxy
gives a ``CONNECT`` tunnel (RFC 9110 section 9.3.6), a ``socks5://`` or ``socks5h://`` one a
SOCKS5 connection (RFC 1928, with RFC 1929 credentials; ``socks5h`` lets the proxy resolve the
name). TLS to the gateway runs inside, so the proxy sees neither the token nor the proofs.

Other schemes (``https://`` proxies, SOCKS4) are refused at start with what to do. Plain-http
gateways are loopback-only (``rewrite.Upstream``) and never go through a proxy.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from agent.proxy.h11client import GatewayError
from agent.proxy.pool import Origin, Streams, Tunnel
from agent.proxy.rewrite import UpstreamError


class ProxySettingError(UpstreamError):
    """The environment names a proxy the gateway connection cannot use."""


ProxyKind = Literal["http", "socks5", "socks5h"]
_KINDS: dict[str, tuple[ProxyKind, int]] = {
    "http": ("http", 80),
    "socks5": ("socks5", 1080),
    "socks5h": ("socks5h", 1080),
}
"""Supported proxy URL schemes, and each one's default port."""


@dataclass(frozen=True)
class GatewayProxy:
    """A proxy's kind, address and, if its URL carries them, credentials."""

    kind: ProxyKind
    host: str
    port: int
    username: str | None = None
    password: str = ""

    @property
    def authorization(self) -> bytes | None:
        """``Proxy-Authorization`` for an HTTP proxy with credentials."""
        if self.username is None:
            return None
        return b"Basic " + base64.b64encode(f"{self.username}:{self.password}".encode())

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


def gateway_proxy(env: Mapping[str, str], origin: Origin) -> GatewayProxy | None:
    """The proxy on the way to ``origin`` under ``env``, or None for a direct connection."""
    if origin.scheme != "https":
        return None
    url = _setting(env, "https_proxy", "all_proxy")
    if not url or exempt(_setting(env, "no_proxy"), origin):
        return None
    if "://" not in url:
        url = "http://" + url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ProxySettingError(f"HTTPS_PROXY {url!r} is not a URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _KINDS or not parts.hostname:
        raise ProxySettingError(
            f"HTTPS_PROXY/ALL_PROXY names a {scheme or 'schemeless'} proxy; the gateway "
            "connection supports http://, socks5:// and socks5h:// proxies: set one, or exempt "
            f"the gateway with NO_PROXY={origin.host}"
        )
    kind, default_port = _KINDS[scheme]
    username = None if parts.username is None else unquote(parts.username)
    return GatewayProxy(
        kind=kind,
        host=parts.hostname,
        port=port or default_port,
        username=username,
        password=unquote(parts.password or ""),
    )


def tunnel_through(proxy: GatewayProxy) -> Tunnel:
    """A ``Tunnel`` for ``ConnectionPool`` that opens each connection through ``proxy``."""

    async def connect(origin: Origin) -> Streams:
        if proxy.kind == "http":
            return await connect_tunnel(proxy, origin)
        return await connect_socks5(proxy, origin)

    return connect


async def connect_tunnel(proxy: GatewayProxy, origin: Origin) -> Streams:
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


_SOCKS_REPLIES = {
    1: "general failure",
    2: "connection not allowed by its rules",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}


async def connect_socks5(proxy: GatewayProxy, origin: Origin) -> Streams:
    """A stream to ``origin`` through a SOCKS5 ``proxy`` (RFC 1928 ``CONNECT``), ready for TLS."""
    try:
        reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    except OSError as exc:
        raise GatewayError(f"cannot reach the SOCKS proxy {proxy.label} ({exc})") from exc
    try:
        await _socks5_handshake(reader, writer, proxy, origin)
    except (asyncio.IncompleteReadError, OSError) as exc:
        writer.close()
        raise GatewayError(f"the SOCKS proxy {proxy.label} broke off the connection") from exc
    except GatewayError:
        writer.close()
        raise
    return reader, writer


async def _socks5_handshake(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    proxy: GatewayProxy,
    origin: Origin,
) -> None:
    # (1) method: none, or username/password when the URL carries credentials (RFC 1929)
    methods = b"\x00\x02" if proxy.username is not None else b"\x00"
    writer.write(b"\x05" + bytes([len(methods)]) + methods)
    version, method = await reader.readexactly(2)
    if version != 5 or method not in methods:
        raise GatewayError(
            f"the SOCKS proxy {proxy.label} accepts none of our login methods; check the "
            "credentials in HTTPS_PROXY/ALL_PROXY"
        )
    if method == 2:
        user, password = (proxy.username or "").encode(), proxy.password.encode()
        writer.write(b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password)
        if (await reader.readexactly(2))[1] != 0:
            raise GatewayError(
                f"the SOCKS proxy {proxy.label} refused the credentials in HTTPS_PROXY/ALL_PROXY"
            )
    # (2) CONNECT to the gateway: by name for socks5h, by a locally resolved address for socks5
    writer.write(b"\x05\x01\x00" + await _socks_address(proxy, origin))
    _, reply, _, address_type = await reader.readexactly(4)
    if reply != 0:
        raise GatewayError(
            f"the SOCKS proxy {proxy.label} could not connect to {origin.host}:{origin.port} "
            f"({_SOCKS_REPLIES.get(reply, f'reply {reply}')})"
        )
    # (3) skip the address the proxy bound for us
    length = {1: 4, 4: 16}.get(address_type)
    if length is None:
        length = (await reader.readexactly(1))[0]
    await reader.readexactly(length + 2)


async def _socks_address(proxy: GatewayProxy, origin: Origin) -> bytes:
    port = origin.port.to_bytes(2, "big")
    host = origin.host
    if proxy.kind == "socks5":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, origin.port, type=socket.SOCK_STREAM
            )
            host = str(infos[0][4][0])
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        name = host.encode("idna")
        return b"\x03" + bytes([len(name)]) + name + port
    return (b"\x01" if address.version == 4 else b"\x04") + address.packed + port
