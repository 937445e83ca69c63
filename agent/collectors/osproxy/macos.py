"""macOS proxy settings in effect, from ``scutil --proxy`` (the System Configuration store).

Only the top-level dictionary is read: ``__SCOPED__`` repeats the per-interface settings,
and the top level is what CFNetwork applies to the primary service.
"""

from __future__ import annotations

from agent.collectors import CollectionContext
from agent.collectors.configfiles import ErrorCode
from agent.collectors.osproxy import (
    OsProxySettings,
    OsWant,
    combine,
    endpoint_setting,
    host_port_endpoint,
    pac_setting,
    unreadable,
)

COMMAND = ("scutil", "--proxy")
_PROTOCOLS = (("HTTP", "http", "http"), ("HTTPS", "https", "http"), ("SOCKS", "socks", "socks"))


def parse_scutil(output: str) -> dict[str, str] | None:
    """Top-level ``key : value`` pairs of scutil's dictionary dump; None if it is not one."""
    lines = output.strip().splitlines()
    if not lines or not lines[0].strip().startswith("<dictionary>"):
        return None
    values: dict[str, str] = {}
    depth = 0
    for line in lines[1:]:
        stripped = line.strip()
        if stripped == "}":
            depth -= 1
            continue
        key, sep, value = stripped.partition(" : ")
        if depth == 0 and sep:
            values[key.strip()] = value.strip()
        if stripped.endswith("{"):
            depth += 1
    return values


def read(ctx: CollectionContext, want: OsWant) -> OsProxySettings:
    """Each protocol whose ``<P>Enable`` is 1, the PAC URL, and WPAD discovery."""
    output = ctx.run(COMMAND)
    if output is None:
        return unreadable("macos", ErrorCode.UNREADABLE)
    values = parse_scutil(output)
    if values is None:
        return unreadable("macos", ErrorCode.INVALID_OUTPUT)
    parts = [OsProxySettings(auto_detect=values.get("ProxyAutoDiscoveryEnable") == "1")]
    for prefix, name, scheme in _PROTOCOLS:
        host = values.get(f"{prefix}Proxy", "")
        if not want.endpoints or values.get(f"{prefix}Enable") != "1" or not host:
            continue
        # The account name, never the password, is in the store; either marks credentials.
        creds = values.get(f"{prefix}ProxyAuthenticated") == "1" or f"{prefix}User" in values
        source = f"macos:{name}"
        endpoint = host_port_endpoint(
            source, host, values.get(f"{prefix}Port"), scheme=scheme, has_credentials=creds
        )
        parts.append(endpoint_setting(source, endpoint))
    pac_url = values.get("ProxyAutoConfigURLString", "")
    if want.pac and values.get("ProxyAutoConfigEnable") == "1" and pac_url:
        parts.append(pac_setting("macos:pac", pac_url))
    return combine(parts)
