"""Proxy family: which proxies and tunnels the machine's traffic goes through."""

from __future__ import annotations

from attest.catalog import Family, Field, FieldId, Sensitivity
from attest.catalog.values import (
    HostPattern,
    ProxyEndpoint,
    ProxySourceError,
    TunnelInterface,
    bounded_list,
)

_NEVER_URL = "credentials, paths, query strings: only scheme, host, port, has_credentials"
_ENDPOINT = "list of {source, scheme, host, port, has_credentials}"
_EXAMPLE_ENDPOINT: ProxyEndpoint = {
    "source": "env:HTTPS_PROXY",
    "scheme": "http",
    "host": "proxy.example.internal",
    "port": 3128,
    "has_credentials": False,
}

FIELDS = (
    Field(
        id=FieldId("proxy.env"),
        family=Family.PROXY,
        value_type=bounded_list(ProxyEndpoint),
        type_name=_ENDPOINT,
        description="HTTP_PROXY, HTTPS_PROXY and ALL_PROXY (either case) in the agent's "
        "environment, http(s) and socks4/socks5/socks5h alike; host as Node.js and Python "
        "clients would connect (both when they differ).",
        sensitivity=Sensitivity.MEDIUM,
        example=[_EXAMPLE_ENDPOINT],
        never=_NEVER_URL,
    ),
    Field(
        id=FieldId("proxy.no_proxy"),
        family=Family.PROXY,
        value_type=bounded_list(HostPattern),
        type_name="list of host patterns",
        description="Host patterns from NO_PROXY / no_proxy that bypass the proxy.",
        sensitivity=Sensitivity.MEDIUM,
        example=["localhost", ".example.internal"],
    ),
    Field(
        id=FieldId("proxy.os"),
        family=Family.PROXY,
        value_type=bounded_list(ProxyEndpoint),
        type_name=_ENDPOINT,
        description="Operating-system proxy settings: GNOME, KDE, macOS scutil, Windows "
        "WinINet and WinHTTP.",
        sensitivity=Sensitivity.MEDIUM,
        example=[{**_EXAMPLE_ENDPOINT, "source": "gnome:https"}],
        never=_NEVER_URL,
    ),
    Field(
        id=FieldId("proxy.pac"),
        family=Family.PROXY,
        value_type=bounded_list(ProxyEndpoint),
        type_name=_ENDPOINT,
        description="Proxy auto-config (PAC) URLs from OS settings, reduced to their host.",
        sensitivity=Sensitivity.MEDIUM,
        example=[{**_EXAMPLE_ENDPOINT, "source": "gnome:autoconfig-url", "port": None}],
        never=_NEVER_URL,
    ),
    Field(
        id=FieldId("proxy.auto_detect"),
        family=Family.PROXY,
        value_type=bool | None,
        type_name="boolean | null",
        description="Whether WPAD proxy auto-detection is switched on; null when unknown.",
        sensitivity=Sensitivity.LOW,
        example=False,
    ),
    Field(
        id=FieldId("proxy.tools"),
        family=Family.PROXY,
        value_type=bounded_list(ProxyEndpoint),
        type_name=_ENDPOINT,
        description="Proxies configured for git (http.proxy, https.proxy), npm (proxy, "
        "https-proxy), pip (proxy, PIP_PROXY) and Claude Code settings env blocks; source is "
        "tool:scope:key.",
        sensitivity=Sensitivity.MEDIUM,
        example=[{**_EXAMPLE_ENDPOINT, "source": "git:global:http.proxy"}],
        never=_NEVER_URL,
    ),
    Field(
        id=FieldId("proxy.tunnels"),
        family=Family.PROXY,
        value_type=bounded_list(TunnelInterface),
        type_name="list of {name, kind}",
        description="Network interfaces that are tunnels or VPNs (tun, tap, utun, wg, ppp, "
        "ipsec, tailscale, zerotier...), by name and kind.",
        sensitivity=Sensitivity.MEDIUM,
        example=[{"name": "wg0", "kind": "wireguard"}],
        never="addresses, traffic, peers",
    ),
    Field(
        id=FieldId("proxy.errors"),
        family=Family.PROXY,
        value_type=bounded_list(ProxySourceError),
        type_name="list of {field, source, error}",
        description="Proxy sources that could not be read or parsed, with the field they feed "
        "and an error code; the proxy rule fails closed on them (too-large, "
        "not-a-file, unreadable, symlink-loop, binary, invalid-json, unexpected-shape, "
        "invalid-url, invalid-output...).",
        sensitivity=Sensitivity.LOW,
        example=[{"field": "proxy.tools", "source": "npm:user", "error": "unreadable"}],
        never="file contents",
    ),
)
