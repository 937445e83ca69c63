"""Wire shapes of catalog values: closed objects with bounded strings, lists and numbers.

One definition for both sides. The agent builds these shapes; the verifier validates every
received signal against them (``server.signals``), strictly: an unknown member, a string
past its bound, a list past its length, a port outside 1-65535 or a value of another type is
refused before any policy rule sees it. The bounds are ``annotated_types`` metadata, which
the agent carries without any validation library.
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal

import annotated_types as at

# pydantic (server side) needs typing_extensions.TypedDict: closed=True (PEP 728) there.
from typing_extensions import TypedDict

from attest.catalog.hosts import PROVIDERS, HostClass

MAX_HOST = 253
"""DNS: a name is at most 253 characters; IPv6 literals are far shorter."""
MAX_SOURCE = 128
MAX_ITEMS: Final = 256
"""No machine has more proxies, base URLs or tunnels than this; a longer list is an attack."""
MAX_ZONE = 64
MAX_CODE = 32
MAX_INTERFACE_NAME = 64

_SOURCE = re.compile(r"[A-Za-z0-9_.:<>/+-]{1,128}")
_HOST = re.compile(r"[a-z0-9_.:-]{0,253}")  # empty only for a PAC file: URL
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,31}")
_CODE = re.compile(r"[a-z0-9-]{1,32}")
_ZONE = re.compile(r"[A-Za-z0-9_+/-]{1,64}")
_NAME = re.compile(r"[^\x00-\x1f\x7f-\x9f]{1,64}")  # Windows names have spaces
_PATTERN = re.compile(r"[A-Za-z0-9.*:_\[\]/%-]{1,255}")


def _matches(pattern: re.Pattern[str]) -> at.Predicate:
    """A bound on a string's characters (pydantic checks ``at.Predicate``)."""

    def check(value: str) -> bool:
        return pattern.fullmatch(value) is not None

    check.__name__ = f"matches {pattern.pattern}"
    return at.Predicate(check)


Source = Annotated[str, _matches(_SOURCE)]
"""Where a value came from, such as ``env:HTTPS_PROXY`` or ``claude-code:user``; never a path."""
Host = Annotated[str, _matches(_HOST)]
"""A normalized host: lower-case ASCII (IDNA), no trailing dot, IP literals without brackets."""
Scheme = Annotated[str, _matches(_SCHEME)]
Port = Annotated[int, at.Interval(ge=1, le=65535)]
ErrorCodeText = Annotated[str, _matches(_CODE)]
ZoneName = Annotated[str, _matches(_ZONE)]
InterfaceName = Annotated[str, _matches(_NAME)]
HostPattern = Annotated[str, _matches(_PATTERN)]
ZoneSource = Literal[
    "TZ",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/sysconfig/clock",
    "/etc/conf.d/clock",
    "timedatectl",
    "registry",
    "systemsetup",
    "unknown",
]
UtcOffsetMinutes = Annotated[int, at.Interval(ge=-24 * 60, le=24 * 60)]

Classification = HostClass
Provider = Annotated[str, at.Predicate(PROVIDERS.__contains__)]
"""A provider id from ``attest.catalog.hosts.PROVIDERS``; anything else is refused."""

BaseUrlField = Literal["baseurl.env", "baseurl.tools"]
ProxySourceField = Literal["proxy.env", "proxy.os", "proxy.pac", "proxy.auto_detect", "proxy.tools"]


class ProxyEndpoint(TypedDict, closed=True):
    """A proxy reduced to where traffic goes: never its credentials, path or query."""

    source: Source
    scheme: Scheme
    host: Host
    port: Port | None
    has_credentials: bool


class BaseUrl(TypedDict, closed=True):
    """An API base URL reduced to provider and destination host.

    ``classification`` is the agent's view, for display: the verifier derives its own from
    the policy's provider hosts and never reads this member.
    """

    source: Source
    provider: Provider
    scheme: Scheme
    host: Host
    port: Port | None
    classification: Classification


class TunnelInterface(TypedDict, closed=True):
    """A network interface whose name marks it as a tunnel or VPN."""

    name: InterfaceName
    kind: InterfaceName


class BaseUrlSourceError(TypedDict, closed=True):
    """A base-URL source that could not be read or parsed: which field it feeds, never contents."""

    field: BaseUrlField
    source: Source
    error: ErrorCodeText


class ProxySourceError(TypedDict, closed=True):
    """A proxy source that could not be read or parsed: which field it feeds, never contents."""

    field: ProxySourceField
    source: Source
    error: ErrorCodeText


SourceError = BaseUrlSourceError | ProxySourceError
"""``{field, source, error}``: the field the unreadable source would have fed."""


def bounded_list(item: object) -> object:
    """``list[item]`` of at most MAX_ITEMS entries, as a catalog ``value_type``."""
    return Annotated[list[item], at.MaxLen(MAX_ITEMS)]  # type: ignore[valid-type]
