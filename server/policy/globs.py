"""Validated glob patterns for zone names, hosts and interface names.

Only ``*`` is special; ``?`` and ``[...]`` are refused so a pattern means what it looks like.
Matching is case-insensitive, so a deny pattern cannot be dodged by changing case.

* zone globs (``Europe/*``, ``Etc/GMT*``): ``*`` matches any run of characters, ``/`` too.
* host globs (``proxy.example.internal``, ``*.example.internal``): ``*`` only as the whole
  first label, matching one or more labels (``a.b.example.internal``) but never the bare
  suffix (``example.internal``) or a look-alike (``evilexample.internal``).
* name globs (``wg*``, ``tailscale``): ``*`` matches any run of characters.

A constructor raises ``ValueError`` with a message that says what to write instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

_ZONE_CHARS = re.compile(r"^[A-Za-z0-9_+\-/*]+$")
_NAME_CHARS = re.compile(r"^[A-Za-z0-9_.:\-*]+$")
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$")
_IPV6 = re.compile(r"^[0-9a-f:.]+$")
MAX_PATTERN = 253


class GlobKind(StrEnum):
    """What a glob matches; decides the allowed syntax."""

    ZONE = "zone"
    HOST = "host"
    NAME = "name"


@dataclass(frozen=True)
class Glob:
    """One validated pattern; ``matches`` is a full, case-insensitive match."""

    pattern: str
    kind: GlobKind
    regex: re.Pattern[str] = field(compare=False, repr=False)

    def matches(self, value: str) -> bool:
        """True when ``value`` matches the whole pattern."""
        if self.kind is GlobKind.HOST:
            value = normalize_host(value)
        return self.regex.fullmatch(value) is not None

    def __str__(self) -> str:
        return self.pattern


def normalize_host(host: str) -> str:
    """Lower-case, without IPv6 brackets or a trailing dot."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.removesuffix(".")


def _star_regex(pattern: str) -> re.Pattern[str]:
    body = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.compile(body, re.IGNORECASE)


def _check_common(pattern: str) -> None:
    if not pattern:
        raise ValueError("empty pattern; remove it or write a pattern")
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"pattern is longer than {MAX_PATTERN} characters; shorten it")
    if any(c in pattern for c in "?[]"):
        raise ValueError(f"{pattern!r} uses '?' or '[...]'; only '*' is supported")


def zone_glob(pattern: str) -> Glob:
    """A glob over IANA zone names, such as ``Europe/*``."""
    _check_common(pattern)
    if not _ZONE_CHARS.fullmatch(pattern) or pattern.startswith("/") or "//" in pattern:
        raise ValueError(
            f"{pattern!r} is not an IANA zone glob; write names like 'Europe/Berlin' or 'Europe/*'"
        )
    return Glob(pattern, GlobKind.ZONE, _star_regex(pattern))


def name_glob(pattern: str) -> Glob:
    """A glob over interface names or tunnel kinds, such as ``wg*``."""
    _check_common(pattern)
    if not _NAME_CHARS.fullmatch(pattern):
        raise ValueError(
            f"{pattern!r} is not a name glob; use letters, digits, '_', '-', '.', ':' and '*'"
        )
    return Glob(pattern, GlobKind.NAME, _star_regex(pattern))


def host_glob(pattern: str) -> Glob:
    """A host name, an IP literal, or ``*.`` followed by a domain."""
    _check_common(pattern)
    host = normalize_host(pattern)
    wildcard = host.startswith("*.")
    rest = host[2:] if wildcard else host
    if "*" in rest:
        raise ValueError(
            f"{pattern!r}: '*' is allowed only as the whole first label, as in '*.example.internal'"
        )
    if ":" in rest:
        if wildcard or not _IPV6.fullmatch(rest):
            raise ValueError(f"{pattern!r} is not a host name or IP address")
    elif not all(_LABEL.fullmatch(label) for label in rest.split(".")):
        raise ValueError(
            f"{pattern!r} is not a host name; write 'proxy.example.internal', "
            "'*.example.internal' or an IP address"
        )
    body = re.escape(rest)
    regex = re.compile(r"(?:[^.]+\.)+" + body if wildcard else body, re.IGNORECASE)
    return Glob(pattern, GlobKind.HOST, regex)


def first_match(globs: tuple[Glob, ...], value: str) -> Glob | None:
    """The first glob that matches ``value``, if any."""
    return next((g for g in globs if g.matches(value)), None)


def show(globs: tuple[Glob, ...]) -> str:
    """Patterns as a short comma-separated list for reasons."""
    return ", ".join(g.pattern for g in globs) if globs else "(none)"


__all__ = [
    "Glob",
    "GlobKind",
    "first_match",
    "host_glob",
    "name_glob",
    "normalize_host",
    "show",
    "zone_glob",
]
