"""Client networks: the gateway's forwarded client address, reduced to a /24 or a /56.

A network, not an address, is recorded: enough to tell one machine's office or home line
from thirty resellers' customers, and less than the address itself.
"""

from __future__ import annotations

import functools
import ipaddress

IPV4_PREFIX = 24
IPV6_PREFIX = 56
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=4096)
def client_network(address: str) -> str:
    """``203.0.113.0/24`` or ``2001:db8:1:2300::/56`` for an address (a pure function,
    memoized: forward auth asks it on every request, mostly for the same few gateways)."""
    parsed = _address(address)
    if parsed is None:
        raise ValueError(f"{address!r} is not an IP address")
    prefix = IPV4_PREFIX if parsed.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{parsed}/{prefix}", strict=False))
