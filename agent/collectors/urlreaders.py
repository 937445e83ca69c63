"""Where a client would connect: a URL read the way the coding tools themselves read it.

Two readers, each a real parser rather than an imitation:

* ``WHATWG``: the URL Standard, as Node.js ``new URL()`` applies it (Claude Code, Gemini
  CLI, opencode, Continue, npm; Codex's Rust ``url`` crate follows the same standard). The
  parser is ada (``ada-url``), the one Node.js itself embeds. For special schemes (http,
  https, ws, wss, ftp) that means backslash as slash, tab and newline removed, percent-decoded
  and IDNA-mapped hosts, and ``127.1`` / ``0x7f.1`` / ``2130706433`` as IPv4.
* ``PYTHON``: httpx's parser (the OpenAI and Anthropic SDKs, LiteLLM and so Aider). It splits
  the authority at the first ``/``, ``?`` or ``#`` only, so ``http://relay\\@official`` goes
  to ``official`` there and to ``relay`` under WHATWG. The host is then read as the C
  resolver reads it (``inet_aton``: ``127.1`` is 127.0.0.1).

A SOCKS or other non-special URL has an opaque host under WHATWG; the client hands that to
the resolver, which reads numeric forms the way the WHATWG host parser does, so the opaque
host goes through that parser too. Either reader returns None when its client could not
connect with the value at all (no host, port 0 or past 65535, characters no resolver takes).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from enum import StrEnum

import ada_url
import httpx

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}
_SPECIAL = frozenset(_DEFAULT_PORTS)
_NAME = re.compile(r"[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*")  # what a resolver can look up
_IPV4_NUMERIC = re.compile(r"[0-9a-fx.]+")
_MAX_HOST = 253


class Reader(StrEnum):
    """Which kind of client reads a setting."""

    WHATWG = "whatwg"
    PYTHON = "python"


BOTH = (Reader.WHATWG, Reader.PYTHON)
"""For a setting any client may read, such as an environment variable."""


@dataclass(frozen=True)
class Destination:
    """Where a URL points, and whether it carried credentials. Nothing else survives."""

    scheme: str
    host: str
    port: int | None
    has_credentials: bool


def canonical_host(host: str) -> str | None:
    """A resolver-ready host as reported: lower case, no brackets or trailing dot; else None."""
    host = host.lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:  # a zone id (fe80::1%eth0) picks the interface, not the address: dropped
            return str(ipaddress.IPv6Address(host.split("%", 1)[0]))
        except ValueError:
            return None
    host = host[:-1] if host.endswith(".") else host
    if not host or len(host) > _MAX_HOST or not host.isascii() or not _NAME.fullmatch(host):
        return None
    if not all(_valid_punycode(label) for label in host.split(".") if label.startswith("xn--")):
        return None
    if _IPV4_NUMERIC.fullmatch(host):
        try:  # what getaddrinfo makes of numeric hosts: 127.1, 0x7f.0.0.1, 2130706433
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return host if any(c.isalpha() and c != "x" for c in host) else None
    return host


def _valid_punycode(label: str) -> bool:
    """An ``xn--`` label must decode to printable, non-ASCII text, or no resolver gets it."""
    try:
        text = label[4:].encode("ascii").decode("punycode")
    except (UnicodeError, ValueError):
        return False
    return bool(text) and not text.isascii() and text.isprintable()


def _port(text: str | int | None) -> int | bool | None:
    """A usable port, None for none, False for one no client can connect to."""
    if text in (None, ""):
        return None
    port = int(text)
    return port if 0 < port <= 65535 else False


def whatwg_destination(raw: str) -> Destination | None:
    """Where a Node.js client given ``raw`` connects (ada, the parser Node embeds)."""
    try:
        url = ada_url.URL(raw)
    except ValueError:
        return None
    scheme = url.protocol.removesuffix(":")
    host = url.hostname
    if scheme not in _SPECIAL and host:
        try:  # an opaque host reaches the resolver as is: read it as a host, as WHATWG does
            host = ada_url.URL(f"http://{host}").hostname
        except ValueError:
            return None
    port = _port(url.port)
    reported = canonical_host(host) if host else None
    if reported is None or port is False:
        return None
    return Destination(scheme, reported, port or None, bool(url.username or url.password))


def python_destination(raw: str) -> Destination | None:
    """Where an httpx-based Python client given ``raw`` connects."""
    try:
        url = httpx.URL(raw)
        host = url.raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeDecodeError, ValueError):
        return None
    port = _port(url.port)
    reported = canonical_host(host) if host else None
    if reported is None or port is False:
        return None
    if port == _DEFAULT_PORTS.get(url.scheme):
        port = None  # as WHATWG: the scheme's own port is no port
    return Destination(url.scheme, reported, port or None, bool(url.userinfo))


_READERS = {Reader.WHATWG: whatwg_destination, Reader.PYTHON: python_destination}


def read_destination(raw: str, reader: Reader) -> Destination | None:
    """``raw`` as ``reader``'s clients read it."""
    return _READERS[reader](raw)


__all__ = [
    "BOTH",
    "Destination",
    "Reader",
    "canonical_host",
    "python_destination",
    "read_destination",
    "whatwg_destination",
]
