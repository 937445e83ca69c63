"""GNOME proxy settings (also what GIO and libproxy applications follow).

One ``gsettings list-recursively`` call returns the mode, the PAC URL and every protocol's
host and port; seven ``gsettings get`` calls would cost seven processes. No gsettings (or no
GNOME schema) means no GNOME settings, not an error.
"""

from __future__ import annotations

import ast

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

COMMAND = ("gsettings", "list-recursively", "org.gnome.system.proxy")
_SCHEMA = "org.gnome.system.proxy"
_PROTOCOLS = (("http", "http"), ("https", "http"), ("socks", "socks"))


def _gvariant(text: str) -> object:
    """A GVariant text value: quoted string, number, boolean; anything else stays text."""
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    for prefix in ("uint32 ", "int32 ", "uint16 "):
        text = text.removeprefix(prefix)
    if text[:1] in ("'", '"') or text.lstrip("-").isdigit():
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
    return text


def parse_gsettings(output: str) -> dict[str, object]:
    """``{"<child>.<key>": value}`` with ``""`` for the top schema: ``".mode"``, ``"http.host"``."""
    values: dict[str, object] = {}
    for line in output.splitlines():
        schema, _, rest = line.partition(" ")
        key, _, raw = rest.partition(" ")
        if schema == _SCHEMA or schema.startswith(_SCHEMA + "."):
            child = schema[len(_SCHEMA) + 1 :]
            values[f"{child}.{key}"] = _gvariant(raw)
    return values


def read(ctx: CollectionContext, want: OsWant) -> OsProxySettings:
    """GNOME's mode decides: ``manual`` uses the hosts, ``auto`` the PAC URL or WPAD."""
    output = ctx.run(COMMAND)
    if output is None:
        return OsProxySettings()
    values = parse_gsettings(output)
    mode = values.get(".mode")
    if mode not in ("none", "manual", "auto"):
        return unreadable("gnome", ErrorCode.INVALID_OUTPUT)
    pac_url = str(values.get(".autoconfig-url") or "")
    # In auto mode an empty URL means "find one with WPAD".
    parts = [OsProxySettings(auto_detect=mode == "auto" and not pac_url)]
    if mode == "manual" and want.endpoints:
        for protocol, scheme in _PROTOCOLS:
            host = str(values.get(f"{protocol}.host") or "")
            if not host:
                continue
            # Only the http child has authentication keys; the password is never kept.
            creds = protocol == "http" and values.get("http.use-authentication") is True
            port = values.get(f"{protocol}.port")
            source = f"gnome:{protocol}"
            endpoint = host_port_endpoint(
                source,
                host,
                port if isinstance(port, int) else None,
                scheme=scheme,
                has_credentials=creds,
            )
            parts.append(endpoint_setting(source, endpoint))
    if mode == "auto" and pac_url and want.pac:
        parts.append(pac_setting("gnome:autoconfig-url", pac_url))
    return combine(parts)
