"""URL reduction: a URL leaves the machine only as scheme, host and port.

Userinfo, paths, queries and fragments are dropped here and nowhere else. Hosts are
normalized the way the clients that use them would (WHATWG URL rules: backslash as slash,
tab/newline removed, percent-decoding, numeric IPv4 forms, IDNA, trailing dot) so that
``http://evil.example\\@api.anthropic.com`` is reported as ``evil.example``, where a Node
client would really connect, not as the official host.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import idna

from agent.collectors import providers
from attest.catalog.values import BaseUrl, Classification, ProxyEndpoint

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,15}")
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}")
_IPV4_PART = re.compile(r"0x[0-9a-f]*|[0-9]+")
_MAX_HOST = 253
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_C0_OR_SPACE = "".join(chr(i) for i in range(0x21))
_SCHEMELESS = re.compile(r"(?:[^@/]*@)?(\[[0-9A-Fa-f:.%]+\]|[^:/@\[\]]+)(?::([0-9]{1,5}))?/?")

_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",  # carrier-grade NAT; also where tailnets live
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
    )
)


@dataclass(frozen=True)
class Destination:
    """Where a URL points, and whether it carried credentials. Nothing else survives."""

    scheme: str
    host: str
    port: int | None
    has_credentials: bool


def parse_destination(raw: str, *, default_scheme: str | None = None) -> Destination | None:
    """Reduce ``raw`` to a Destination; None when it is not a usable URL.

    Without ``://`` the value is taken as ``[user@]host[:port]`` under ``default_scheme``
    (proxies are often written that way) if it has a port, a dot or brackets; otherwise, or
    with no default, it is rejected. Rejecting rather than guessing keeps a pasted token or
    path from being reported as a "host".
    """
    text = _TAB_OR_NEWLINE.sub("", raw).strip(_C0_OR_SPACE)
    if not text:
        return None
    if "://" not in text:
        if default_scheme is None or not _looks_like_host_port(text):
            return None
        text = f"{default_scheme}://{text}"
    scheme = text.split("://", 1)[0].lower()
    if not _SCHEME.fullmatch(scheme):
        return None
    if scheme in _SPECIAL_SCHEMES:
        text = text.replace("\\", "/")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    userinfo = parts.netloc.rpartition("@")[0]
    host = normalize_host(parts.hostname or "")
    if host is None or port == 0:
        return None
    return Destination(scheme=scheme, host=host, port=port, has_credentials=bool(userinfo))


def _looks_like_host_port(text: str) -> bool:
    """``host:port``, ``host.domain`` or ``[v6]``: a bare word such as a pasted token is not."""
    match = _SCHEMELESS.fullmatch(text)
    if match is None:
        return False
    host, port = match.group(1), match.group(2)
    return bool(port) or host.startswith("[") or "." in host


def normalize_host(host: str) -> str | None:
    """Lower-case, IDNA-encoded, dot-trimmed host or IP literal; None when it is not one."""
    if ":" in host:  # urlsplit has already removed the brackets of an IPv6 literal
        try:
            return str(ipaddress.IPv6Address(host.split("%", 1)[0]))
        except ValueError:
            return None
    if "%" in host:
        try:
            host = unquote(host, errors="strict")
        except UnicodeDecodeError:
            return None
    host = host.lower().removesuffix(".")
    if not host or any(c.isspace() or c in "/\\?#@%[]" for c in host):
        return None
    ipv4 = _whatwg_ipv4(host)
    if ipv4 is not None:
        return str(ipv4)
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError:
            return None
    if len(host) > _MAX_HOST or not all(_LABEL.fullmatch(label) for label in host.split(".")):
        return None
    return host


def _whatwg_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Clients accept ``127.1``, ``0x7f.0.0.1`` and ``2130706433`` as IPv4; so must we."""
    parts = host.split(".")
    if not _IPV4_PART.fullmatch(parts[-1]) or len(parts) > 4:
        return None
    numbers: list[int] = []
    for part in parts:
        if not _IPV4_PART.fullmatch(part):
            return None
        if part.startswith("0x"):
            numbers.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if any(c in "89" for c in part):
                return None
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part))
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last + sum(n << (8 * (3 - i)) for i, n in enumerate(head))
    return ipaddress.IPv4Address(value)


def ip_literal(host: str) -> IPAddress | None:
    """The address a normalized host names, if it is an IP literal."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def classify(provider: str, host: str) -> Classification:
    """official, localhost, private-network or custom, for a normalized host.

    Only IP literals are called private: a name's address is whatever DNS or a hosts file
    says, which the user controls, so ``relay.internal`` is custom. ``localhost`` is the one
    name clients resolve to loopback themselves (RFC 6761, curl, browsers).
    """
    address = ip_literal(host)
    if address is not None:
        if address.is_loopback or address.is_unspecified:
            return "localhost"
        if any(address in net for net in _PRIVATE_NETWORKS):
            return "private-network"
        return "custom"
    if host == "localhost" or host.endswith(".localhost"):
        return "localhost"
    if providers.is_official_host(provider, host):
        return "official"
    return "custom"


def proxy_endpoint(source: str, raw: str, *, default_scheme: str = "http") -> ProxyEndpoint | None:
    """A proxy setting as a catalog ProxyEndpoint; None when ``raw`` is not a usable URL."""
    dest = parse_destination(raw, default_scheme=default_scheme)
    if dest is None:
        return None
    return {
        "source": source,
        "scheme": dest.scheme,
        "host": dest.host,
        "port": dest.port,
        "has_credentials": dest.has_credentials,
    }


def base_url(source: str, provider: str, raw: str) -> BaseUrl | None:
    """An API base URL as a catalog BaseUrl; None when ``raw`` is not a usable URL."""
    dest = parse_destination(raw)
    if dest is None:
        return None
    return {
        "source": source,
        "provider": provider,
        "scheme": dest.scheme,
        "host": dest.host,
        "port": dest.port,
        "classification": classify(provider, dest.host),
    }
