"""KDE proxy settings: ``[Proxy Settings]`` of ``kioslaverc``, read as a file.

``ProxyType``: 0 none, 1 manual, 2 PAC script, 3 WPAD, 4 "use these environment variables"
(the host fields then hold variable names). Hosts are written ``http://host 8080`` (space
before the port) by KDE's dialog and ``http://host:8080`` by hand; both are accepted.
"""

from __future__ import annotations

import re
from pathlib import Path

from agent.collectors import CollectionContext
from agent.collectors.configfiles import load_text, parse_ini
from agent.collectors.osproxy import (
    OsProxySettings,
    OsWant,
    combine,
    endpoint_setting,
    host_port_endpoint,
    pac_setting,
    unreadable,
)

_SECTION = "proxy settings"
_PROTOCOLS = (("httpproxy", "http", "http"), ("httpsproxy", "https", "http"))
_SOCKS = ("socksproxy", "socks", "socks")
_SPACED_PORT = re.compile(r"(\S+)\s+(\d+)")
_MANUAL, _PAC, _WPAD, _ENVIRONMENT = "1", "2", "3", "4"


def kioslaverc(ctx: CollectionContext) -> Path:
    """Where KDE (5 and 6) keeps its proxy settings."""
    xdg = ctx.env.get("XDG_CONFIG_HOME") or ""
    return (Path(xdg) if xdg else ctx.home / ".config") / "kioslaverc"


def read(ctx: CollectionContext, want: OsWant) -> OsProxySettings:
    """KDE settings in effect according to ``ProxyType``; no file means no KDE settings."""
    loaded = load_text(kioslaverc(ctx))
    if loaded is None:
        return OsProxySettings()
    if loaded.error is not None:
        return unreadable("kde", loaded.error)
    settings = {k: v for s, k, v in parse_ini(str(loaded.data)) if s == _SECTION}
    proxy_type = settings.get("proxytype", "0")
    parts = [OsProxySettings(auto_detect=proxy_type == _WPAD)]
    if want.endpoints and proxy_type in (_MANUAL, _ENVIRONMENT):
        for key, name, scheme in (*_PROTOCOLS, _SOCKS):
            value = settings.get(key, "")
            if proxy_type == _ENVIRONMENT:
                value = ctx.env.get(value, "") if value else ""
            if not value.strip():
                continue
            spaced = _SPACED_PORT.fullmatch(value.strip())
            host, port = (spaced.group(1), spaced.group(2)) if spaced else (value, None)
            source = f"kde:{name}"
            parts.append(
                endpoint_setting(source, host_port_endpoint(source, host, port, scheme=scheme))
            )
    script = settings.get("proxy config script", "")
    if want.pac and proxy_type == _PAC and script:
        parts.append(pac_setting("kde:pac", script))
    return combine(parts)
