"""Tunnel and VPN interfaces, recognized by name only (never addresses, peers or traffic).

Unix names are terse and conventional (``wg0``, ``utun3``, ``tun0``); Windows lists friendly
names that VPN clients set (``Tailscale``, ``OpenVPN Wintun``). The most specific pattern
wins, so ``nordlynx`` is wireguard rather than unknown. macOS always has a few ``utun``
interfaces for its own services; they are reported as ``utun`` and left to policy.
"""

from __future__ import annotations

import re

from agent.collectors import CollectionContext
from attest.catalog.values import MAX_INTERFACE_NAME, TunnelInterface

_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        ("tailscale", r"tailscale\d*"),
        ("zerotier", r"zt[0-9a-z]{6,}|zerotier.*"),
        ("wireguard", r"wg(\d+|[-_].*)?|nordlynx|wireguard.*|mullvad.*"),
        ("globalprotect", r"gpd\d+|pangp.*"),
        ("cisco-anyconnect", r"cscotun\d*|cisco (anyconnect|secure client).*"),
        ("fortinet", r"fortinet.*|fctvpn.*"),
        ("openvpn", r"openvpn.*|tap-windows.*"),
        ("wintun", r".*wintun.*"),
        ("utun", r"utun\d+"),
        ("ipsec", r"ipsec\d*|vti\d+|ip_vti\d+|xfrm\d+"),
        ("ppp", r"ppp\d+"),
        ("tap", r"tap(\d+|[-_].*)"),
        ("tun", r"tun(\d+|[-_].*)?|.* tun"),
    )
)


def tunnel_kind(name: str) -> str | None:
    """The kind of tunnel ``name`` denotes, or None for an ordinary interface."""
    return next((kind for kind, pattern in _KINDS if pattern.fullmatch(name)), None)


def find_tunnels(ctx: CollectionContext) -> list[TunnelInterface]:
    """Tunnel interfaces, sorted by name."""
    found: list[TunnelInterface] = []
    for name in sorted(set(ctx.interfaces())):
        kind = tunnel_kind(name)
        if kind is not None:
            found.append({"name": name[:MAX_INTERFACE_NAME], "kind": kind})
    return found
