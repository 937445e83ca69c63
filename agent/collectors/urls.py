"""URL reduction: a URL leaves the machine only as scheme, host and port.

Userinfo, paths, queries and fragments are dropped here and nowhere else. The host is the
one the client reading the setting would connect to (``urlreaders``); where clients of
different kinds read a setting and disagree, every host any of them would reach is reported,
so a string crafted to look official to one parser cannot hide the relay another one uses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agent.collectors.urlreaders import BOTH, Destination, Reader, read_destination
from attest.catalog.hosts import classify
from attest.catalog.values import BaseUrl, ProxyEndpoint

_SCHEMELESS = re.compile(r"(?:[^@/]*@)?(\[[0-9A-Fa-f:.%]+\]|[^:/@\[\]]+)(?::([0-9]{1,5}))?/?")
_C0_OR_SPACE = "".join(chr(i) for i in range(0x21))


def destinations(
    raw: str, readers: Sequence[Reader] = BOTH, *, default_scheme: str | None = None
) -> tuple[Destination, ...]:
    """Every distinct place ``readers``' clients would connect to; empty when none could.

    With a ``default_scheme`` (proxies), a value without ``://`` is taken as
    ``[user@]host[:port]`` under it, as Node's proxy-from-env and httpx do, if it has a port,
    a dot or brackets; a bare word is refused rather than guessed, so that a pasted token or
    path is never reported as a "host". Without one (base URLs) the readers decide alone:
    WHATWG reads ``https:relay.example`` as a URL, and so must we.
    """
    text = raw
    if default_scheme is not None and "://" not in raw:
        if not _looks_like_host_port(raw.strip(_C0_OR_SPACE)):
            return ()
        text = f"{default_scheme}://{raw.strip(_C0_OR_SPACE)}"
    found: list[Destination] = []
    for reader in readers:
        dest = read_destination(text, reader)
        if dest is not None and dest not in found:
            found.append(dest)
    return tuple(found)


def _looks_like_host_port(text: str) -> bool:
    """``host:port``, ``host.domain`` or ``[v6]``: a bare word such as a pasted token is not."""
    match = _SCHEMELESS.fullmatch(text)
    if match is None:
        return False
    host, port = match.group(1), match.group(2)
    return bool(port) or host.startswith("[") or "." in host


def proxy_endpoints(
    source: str, raw: str, readers: Sequence[Reader] = BOTH, *, default_scheme: str = "http"
) -> list[ProxyEndpoint]:
    """A proxy setting as catalog ProxyEndpoints; empty when ``raw`` is not a usable URL."""
    return [
        {
            "source": source,
            "scheme": dest.scheme,
            "host": dest.host,
            "port": dest.port,
            "has_credentials": dest.has_credentials,
        }
        for dest in destinations(raw, readers, default_scheme=default_scheme)
    ]


def base_urls(
    source: str, provider: str, raw: str, readers: Sequence[Reader] = BOTH
) -> list[BaseUrl]:
    """An API base URL as catalog BaseUrls; empty when ``raw`` is not a usable URL.

    ``classification`` uses the shipped provider hosts and is for display: the verifier
    derives its own from the policy.
    """
    return [
        {
            "source": source,
            "provider": provider,
            "scheme": dest.scheme,
            "host": dest.host,
            "port": dest.port,
            "classification": classify(provider, dest.host),
        }
        for dest in destinations(raw, readers)
    ]


__all__ = ["base_urls", "destinations", "proxy_endpoints"]
