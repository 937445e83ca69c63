"""Glob syntax at its edges: lengths, separators, IP literals, normalisation of the value, the
exact refusal messages, and ``first_match`` / ``show`` as the rules use them."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from server.policy.globs import (
    Glob,
    GlobKind,
    first_match,
    host_glob,
    name_glob,
    normalize_host,
    show,
    zone_glob,
)

Make = Callable[[str], Glob]


@pytest.mark.parametrize(
    ("make", "pattern", "value", "matches"),
    [
        (zone_glob, "x" * 253, "X" * 253, True),
        (zone_glob, "Etc/GMT+5", "etc/gmt+5", True),
        (zone_glob, "Etc/GMT+5", "Etc/GMT+50", False),
        (zone_glob, "*/Berlin", "Europe/Berlin", True),
        (name_glob, "wg0:1.x-y_z*", "WG0:1.X-Y_Z9", True),
        (name_glob, "wg*", "awg0", False),
        (name_glob, "wg.0", "wgx0", False),
        (host_glob, "Proxy.Example.Internal.", "proxy.example.internal", True),
        (host_glob, "p.example", " P.Example. ", True),
        (host_glob, "p.example", "[p.example]", True),
        (host_glob, "p.example", "p-example", False),
        (host_glob, "_x.example", "_x.example", True),
        (host_glob, "::FFFF:10.0.0.1", "[::ffff:10.0.0.1]", True),
        (host_glob, "fe80::1", "fe80::10", False),
        (host_glob, "*.example.internal", "A.EXAMPLE.INTERNAL.", True),
        (host_glob, "*.example.internal", "a.example.internalx", False),
    ],
)
def test_matches(make: Make, pattern: str, value: str, matches: bool) -> None:
    assert make(pattern).matches(value) is matches


@pytest.mark.parametrize(
    ("make", "pattern", "message"),
    [
        (zone_glob, "", "empty pattern; remove it or write a pattern"),
        (name_glob, "x" * 254, "pattern is longer than 253 characters; shorten it"),
        (host_glob, "a?.example", "'a?.example' uses '?' or '[...]'; only '*' is supported"),
        (host_glob, "[::1]", "'[::1]' uses '?' or '[...]'; only '*' is supported"),
        (zone_glob, "Europe]", "'Europe]' uses '?' or '[...]'; only '*' is supported"),
        (
            zone_glob,
            "Europe//Berlin",
            "'Europe//Berlin' is not an IANA zone glob; write names like 'Europe/Berlin' or "
            "'Europe/*'",
        ),
        (zone_glob, "/Etc/UTC", "'/Etc/UTC' is not an IANA zone glob; write names like"),
        (name_glob, "a/b", "'a/b' is not a name glob; use letters, digits, '_', '-', '.', ':' "
         "and '*'"),
        (host_glob, "*.*.example", "'*.*.example': '*' is allowed only as the whole first "
         "label, as in '*.example.internal'"),
        (host_glob, "fe80::1%eth0", "'fe80::1%eth0' is not a host name or IP address"),
        (host_glob, "*.fe80::1", "'*.fe80::1' is not a host name or IP address"),
        (host_glob, "a..b", "'a..b' is not a host name; write 'proxy.example.internal', "
         "'*.example.internal' or an IP address"),
        (host_glob, "a.b-", "'a.b-' is not a host name;"),
        (host_glob, "a.-b", "'a.-b' is not a host name;"),
        (host_glob, "a b.example", "'a b.example' is not a host name;"),
    ],
)  # fmt: skip
def test_refused_with_what_to_write(make: Make, pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        make(pattern)


def test_longest_patterns_are_accepted() -> None:
    assert name_glob("w" * 253).kind is GlobKind.NAME
    host = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
    assert host_glob(host).matches(host.upper())


def test_kinds_and_text() -> None:
    assert (zone_glob("Etc/*").kind, name_glob("wg*").kind, host_glob("h.x").kind) == (
        GlobKind.ZONE,
        GlobKind.NAME,
        GlobKind.HOST,
    )
    assert str(host_glob("*.Example.internal")) == "*.Example.internal"


def test_normalize_host() -> None:
    assert normalize_host(" [FE80::1] ") == "fe80::1"
    assert normalize_host("Example.COM.") == "example.com"
    assert normalize_host("[x") == "[x"
    assert normalize_host("x]") == "x]"


def test_first_match_and_show() -> None:
    globs = (name_glob("wg*"), name_glob("w*"), name_glob("tun*"))
    assert first_match(globs, "wg0") is globs[0]
    assert first_match(globs, "wx") is globs[1]
    assert first_match(globs, "utun") is None
    assert first_match((), "wg0") is None
    assert show(globs) == "wg*, w*, tun*"
    assert show(()) == "(none)"
