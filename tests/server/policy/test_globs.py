"""Glob patterns: what they match, what they refuse, and that deny cannot be dodged by case."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from server.policy.globs import host_glob, name_glob, zone_glob

LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("Europe/*", "Europe/Berlin", True),
        ("Europe/*", "EUROPE/BERLIN", True),
        ("Europe/*", "Europe", False),
        ("America/*", "America/Argentina/Salta", True),
        ("Etc/GMT*", "Etc/GMT+5", True),
        ("Etc/UTC", "Etc/UTC2", False),
        ("Etc/UTC", "XEtc/UTC", False),
    ],
)
def test_zone_glob(pattern: str, value: str, matches: bool) -> None:
    assert zone_glob(pattern).matches(value) is matches


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("proxy.example.internal", "proxy.example.internal", True),
        ("proxy.example.internal", "PROXY.example.internal.", True),
        ("proxy.example.internal", "proxy.example.internal.evil.net", False),
        ("*.example.internal", "a.example.internal", True),
        ("*.example.internal", "a.b.example.internal", True),
        ("*.example.internal", "example.internal", False),
        ("*.example.internal", "evilexample.internal", False),
        ("*.example.internal", ".example.internal", False),
        ("10.0.0.1", "10.0.0.1", True),
        ("10.0.0.1", "10.0.0.10", False),
        ("::1", "[::1]", True),
    ],
)
def test_host_glob(pattern: str, value: str, matches: bool) -> None:
    assert host_glob(pattern).matches(value) is matches


@pytest.mark.parametrize(
    ("make", "pattern", "message"),
    [
        (zone_glob, "", "empty pattern"),
        (zone_glob, "Europe/?erlin", r"only '\*' is supported"),
        (zone_glob, "/Europe", "not an IANA zone glob"),
        (zone_glob, "Europe Berlin", "not an IANA zone glob"),
        (host_glob, "*", "whole first label"),
        (host_glob, "proxy.*.internal", "whole first label"),
        (host_glob, "*proxy.example.internal", "whole first label"),
        (host_glob, "https://proxy.example.internal", "not a host name or IP address"),
        (host_glob, "proxy_.example.internal/x", "not a host name"),
        (host_glob, "-bad.example.internal", "not a host name"),
        (host_glob, "*.::1", "not a host name or IP address"),
        (name_glob, "wg 0", "not a name glob"),
        (name_glob, "x" * 254, "longer than 253"),
    ],
)
def test_refused_patterns(make: object, pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(pattern)  # type: ignore[operator]


@given(st.lists(LABEL, min_size=1, max_size=4), st.lists(LABEL, min_size=1, max_size=3))
def test_wildcard_host_matches_subdomains_only(suffix: list[str], prefix: list[str]) -> None:
    domain = ".".join(suffix)
    glob = host_glob("*." + domain)
    assert glob.matches(".".join(prefix) + "." + domain)
    assert not glob.matches(domain)
    assert not glob.matches(prefix[0] + domain)
    outside = domain + "." + prefix[0]
    assume(not outside.endswith("." + domain))
    assert not glob.matches(outside)


@given(st.from_regex(r"[A-Za-z_]{1,12}/[A-Za-z_+\-]{1,14}", fullmatch=True))
def test_deny_cannot_be_dodged_by_case(zone: str) -> None:
    glob = zone_glob(zone)
    assert glob.matches(zone.swapcase())
    assert glob.matches(zone.upper())
    assert name_glob("wg*").matches("WG" + zone.split("/")[0])
