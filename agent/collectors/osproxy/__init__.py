"""Operating-system proxy settings: one module per desktop or OS, each with ``read(ctx, want)``.

``linux`` reads GNOME (gsettings) and KDE (kioslaverc); ``darwin`` reads ``scutil --proxy``;
``windows`` reads WinINet and WinHTTP from the registry. A reader touches only what ``want``
asks for, so a manifest that wants the PAC URL alone runs no extra command.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from agent.collectors import CollectionContext, Platform
from agent.collectors.configfiles import ErrorCode
from agent.collectors.findings import Problem, problem
from agent.collectors.urls import proxy_endpoints
from attest.catalog.values import ProxyEndpoint

_MAX_PORT = 65535
_PORT = re.compile(r"[0-9]{1,5}")


@dataclass(frozen=True)
class OsWant:
    """Which OS proxy facts the caller needs."""

    endpoints: bool = True
    pac: bool = True
    auto_detect: bool = True


@dataclass(frozen=True)
class OsProxySettings:
    """Proxies in effect, PAC URLs, WPAD auto-detection (None: unknown), unreadable sources."""

    endpoints: tuple[ProxyEndpoint, ...] = ()
    pac: tuple[ProxyEndpoint, ...] = ()
    auto_detect: bool | None = None
    errors: tuple[Problem, ...] = ()


OsProxyReader = Callable[[CollectionContext, OsWant], OsProxySettings]


def unreadable(source: str, code: ErrorCode) -> OsProxySettings:
    """Settings of a source that could not be read."""
    return OsProxySettings(errors=(problem(source, code),))


def combine(parts: Iterable[OsProxySettings]) -> OsProxySettings:
    """Several desktops' settings: any source switching auto-detection on makes it on."""
    items = list(parts)
    detected = [p.auto_detect for p in items if p.auto_detect is not None]
    return OsProxySettings(
        endpoints=tuple(e for p in items for e in p.endpoints),
        pac=tuple(e for p in items for e in p.pac),
        auto_detect=any(detected) if detected else None,
        errors=tuple(e for p in items for e in p.errors),
    )


def host_port_endpoint(
    source: str,
    host: str,
    port: object,
    *,
    scheme: str = "http",
    has_credentials: bool = False,
) -> list[ProxyEndpoint]:
    """Endpoints from separate host and port settings (hosts sometimes carry a scheme)."""
    host = host.strip()
    if ":" in host and "://" not in host and not host.startswith("["):
        host = f"[{host}]"  # a bare IPv6 address
    digits = str(port) if port is not None else ""
    number = int(digits) if _PORT.fullmatch(digits) else 0
    found = []
    for endpoint in proxy_endpoints(source, host if "://" in host else f"{scheme}://{host}"):
        if endpoint["port"] is None and 0 < number <= _MAX_PORT:
            endpoint = {**endpoint, "port": number}
        if has_credentials:
            endpoint = {**endpoint, "has_credentials": True}
        found.append(endpoint)
    return found


def pac_endpoints(source: str, raw: str) -> list[ProxyEndpoint]:
    """A PAC URL's destinations; a ``file:`` script is reported as such, without its path."""
    if raw.strip().lower().startswith("file:"):
        return [
            {
                "source": source,
                "scheme": "file",
                "host": "",
                "port": None,
                "has_credentials": False,
            }
        ]
    return proxy_endpoints(source, raw)


def endpoint_setting(source: str, endpoints: list[ProxyEndpoint]) -> OsProxySettings:
    """One proxy setting, or ``invalid-url`` for ``source`` when it could not be reduced."""
    if not endpoints:
        return unreadable(source, ErrorCode.INVALID_URL)
    return OsProxySettings(endpoints=tuple(endpoints))


def pac_setting(source: str, raw: str) -> OsProxySettings:
    """One PAC URL, or ``invalid-url`` for ``source``."""
    endpoints = pac_endpoints(source, raw)
    if not endpoints:
        return unreadable(source, ErrorCode.INVALID_URL)
    return OsProxySettings(pac=tuple(endpoints))


def read_os_proxy(ctx: CollectionContext, want: OsWant) -> OsProxySettings:
    """The OS proxy settings of ``ctx.platform``."""
    from agent.collectors.osproxy import gnome, kde, macos, windows

    readers: dict[Platform, tuple[OsProxyReader, ...]] = {
        "linux": (gnome.read, kde.read),
        "darwin": (macos.read,),
        "windows": (windows.read,),
    }
    return combine(reader(ctx, want) for reader in readers[ctx.platform])
