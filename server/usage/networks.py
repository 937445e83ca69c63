"""Client networks: the gateway's forwarded client address, reduced to a /24 or a /56.

A network, not an address, is recorded: enough to tell one machine's office or home line
from thirty resellers' customers, and less than the address itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IPV4_PREFIX = 24
IPV6_PREFIX = 56
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(value: str | Iterable[str]) -> tuple[Network, ...]:
    """``trusted_proxies`` as networks: a list or a comma-separated string of CIDRs."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())


LOOPBACK: tuple[Network, ...] = parse_trusted_proxies("127.0.0.0/8,::1/128")


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]
) -> str | None:
    """The client as the nearest untrusted hop: walk ``X-Forwarded-For`` from the right only
    while each hop is a trusted proxy (a client can prepend anything, never append)."""
    hop = _address(peer or "")
    if hop is None:
        return None
    chain = [part for part in (forwarded_for or "").split(",") if part.strip()]
    while any(hop in net for net in trusted) and chain:
        previous = _address(chain.pop())
        if previous is None:
            break
        hop = previous
    return str(hop)


def client_network(address: str) -> str:
    """``203.0.113.0/24`` or ``2001:db8:1:2300::/56`` for an address."""
    parsed = _address(address)
    if parsed is None:
        raise ValueError(f"{address!r} is not an IP address")
    prefix = IPV4_PREFIX if parsed.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{parsed}/{prefix}", strict=False))
