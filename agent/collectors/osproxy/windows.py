"""Windows proxy settings: WinINet (browsers, most apps) and WinHTTP (services, some CLIs).

Both live in the registry (key paths are case-insensitive: one spelling serves both hives).
WinINet's are per user unless the machine policy ``ProxySettingsPerUser = 0`` makes them
machine-wide. ``Connections`` blobs share one layout (version, counter, flags, then
length-prefixed proxy and bypass strings); the flags say whether WPAD auto-detection is on.
WinHTTP's blob is read directly: ``netsh winhttp show proxy`` prints the same value, localized,
at the cost of a process, so it is only the fallback for a blob this module cannot parse.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from agent.collectors import CollectionContext
from agent.collectors.configfiles import ErrorCode
from agent.collectors.osproxy import (
    OsProxySettings,
    OsWant,
    combine,
    endpoint_setting,
    pac_setting,
    unreadable,
)
from agent.collectors.urls import proxy_endpoints

INTERNET_SETTINGS = r"Software\Microsoft\Windows\CurrentVersion\Internet Settings"
_POLICY = r"SOFTWARE\Policies\Microsoft\Windows\CurrentVersion\Internet Settings"
_CONNECTIONS = INTERNET_SETTINGS + r"\Connections"
NETSH = ("netsh", "winhttp", "show", "proxy")

_FLAG_PROXY = 0x02
_FLAG_AUTO_DETECT = 0x08
_HEADER = 12  # version, change counter, flags: three little-endian DWORDs
_SCHEMES = {"http": "http", "https": "http", "socks": "socks", "all": "http"}


class ConnectionBlob(NamedTuple):
    """The parts of a ``Connections`` registry blob that matter here."""

    flags: int
    proxy_server: str


def parse_connection_blob(blob: object) -> ConnectionBlob | None:
    """Flags and proxy server of a DefaultConnectionSettings/WinHttpSettings blob."""
    if not isinstance(blob, bytes) or len(blob) < _HEADER + 4:
        return None
    flags = int.from_bytes(blob[8:12], "little")
    length = int.from_bytes(blob[12:16], "little")
    if _HEADER + 4 + length > len(blob):
        return None
    try:
        server = blob[16 : 16 + length].decode("ascii")
    except UnicodeDecodeError:
        return None
    return ConnectionBlob(flags, server)


def parse_proxy_server(value: str) -> list[tuple[str, str]]:
    """``(protocol, address)`` pairs of a ProxyServer value.

    ``host:port`` serves every protocol (``all``); ``http=h:p;https=h:p;socks=h:p`` names
    them one by one. FTP and gopher entries are dropped: no API traffic uses them.
    """
    entries = [e for e in re.split(r"[;\s]+", value.strip()) if e]
    pairs = []
    for entry in entries:
        protocol, sep, address = entry.partition("=")
        protocol, address = (protocol.lower(), address) if sep else ("all", entry)
        if protocol in _SCHEMES and address:
            pairs.append((protocol, address))
    return pairs


def _server_settings(prefix: str, value: str) -> list[OsProxySettings]:
    parts = []
    for protocol, address in parse_proxy_server(value):
        source = f"{prefix}:{protocol}"
        endpoints = proxy_endpoints(source, address, default_scheme=_SCHEMES[protocol])
        parts.append(endpoint_setting(source, endpoints))
    return parts


def parse_netsh(output: str) -> str | None:
    """The proxy server list of ``netsh winhttp show proxy``; ``""`` for direct access.

    The labels are localized, so the first ``label : value`` line is taken by position.
    """
    for line in output.splitlines():
        label, sep, value = line.partition(" : ")
        if sep and label.strip() and value.strip():
            return value.strip()
    return "" if output.strip() else None


def _wininet(ctx: CollectionContext, want: OsWant) -> OsProxySettings:
    machine_wide = ctx.registry("HKLM", _POLICY, "ProxySettingsPerUser") == 0
    hive = "HKLM" if machine_wide else "HKCU"
    key = INTERNET_SETTINGS  # the same path under either hive
    parts: list[OsProxySettings] = []
    if want.endpoints and ctx.registry(hive, key, "ProxyEnable") == 1:
        server = ctx.registry(hive, key, "ProxyServer")
        if isinstance(server, str):
            parts.extend(_server_settings("wininet", server))
    if want.pac:
        pac = ctx.registry(hive, key, "AutoConfigURL")
        if isinstance(pac, str) and pac.strip():
            parts.append(pac_setting("wininet:autoconfig-url", pac))
    if want.auto_detect:
        blob = parse_connection_blob(ctx.registry(hive, _CONNECTIONS, "DefaultConnectionSettings"))
        legacy = ctx.registry(hive, key, "AutoDetect") if blob is None else None
        if blob is not None:
            parts.append(OsProxySettings(auto_detect=bool(blob.flags & _FLAG_AUTO_DETECT)))
        elif isinstance(legacy, int):
            parts.append(OsProxySettings(auto_detect=bool(legacy)))
    return combine(parts)


def _winhttp(ctx: CollectionContext) -> OsProxySettings:
    raw = ctx.registry("HKLM", _CONNECTIONS, "WinHttpSettings")
    if raw is None:
        return OsProxySettings()  # never set: direct access
    blob = parse_connection_blob(raw)
    if blob is not None:
        server = blob.proxy_server if blob.flags & _FLAG_PROXY else ""
    else:
        output = ctx.run(NETSH)
        parsed = parse_netsh(output) if output is not None else None
        if parsed is None:
            return unreadable("winhttp", ErrorCode.INVALID_OUTPUT)
        server = parsed
    return combine(_server_settings("winhttp", server))


def read(ctx: CollectionContext, want: OsWant) -> OsProxySettings:
    """WinINet then WinHTTP; WinHTTP has neither PAC URL nor auto-detect to offer."""
    parts = [_wininet(ctx, want)]
    if want.endpoints:
        parts.append(_winhttp(ctx))
    return combine(parts)
