"""The decision and the exact reason of each host and tunnel rule, one table row per case.

The reason is what a person reads in ``policy explain``, the audit log and the agent's
refusal: each row pins the verdict and the whole sentence, so a lost clause (the unreadable
source, the fields skipped, the allowed hosts) fails here.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from server.policy import Policy, RuleMode
from server.policy.baseurl import BaseUrlRule
from server.policy.globs import host_glob, name_glob
from server.policy.proxy import ProxyRule
from server.policy.tunnels import TunnelRule
from tests.server.policy.conftest import base_url, make_facts, proxy_endpoint, tunnel

OURS = (host_glob("proxy.example.internal"),)
FIX = "fix that setting so it names a usable URL (or remove it), or set "
IGNORE = "unsafe_ignore_unreadable_sources = true in "
OS_PAC_TOOLS = (
    "field proxy.os was not sent (not consented); field proxy.pac was not sent (not "
    "consented); field proxy.tools was not sent (not consented)"
)
SKIPPED = ", skipped (unsafe_pass_if_not_sent)"
NO_PROXY = {f"proxy.{k}": [] for k in ("env", "os", "pac", "tools", "errors")}
NO_BASE = {"baseurl.env": [], "baseurl.tools": [], "baseurl.errors": []}


def _unreadable(field: str, source: str, error: str = "invalid-url") -> dict[str, str]:
    return {"field": field, "source": source, "error": error}


def _relays(count: int) -> list[dict[str, object]]:
    return [base_url(f"r{i}.example.net") for i in range(count)]


def _relay_list(count: int) -> str:
    return "; ".join(f"env:ANTHROPIC_BASE_URL -> r{i}.example.net (custom)" for i in range(count))


CASES: list[tuple[str, object, dict[str, object], bool, str]] = [
    # proxy
    (
        "proxy-refused-unreadable-and-skipped",
        ProxyRule(allowed_hosts=OURS, unsafe_pass_if_not_sent=True),
        {
            "proxy.env": [proxy_endpoint("evil.example.net")],
            "proxy.errors": [_unreadable("proxy.env", "env:ALL_PROXY")],
        },
        False,
        "proxy not allowed: env:HTTPS_PROXY -> evil.example.net (allowed: "
        f"proxy.example.internal); could not read env:ALL_PROXY (invalid-url): {FIX}{IGNORE}"
        f"[rules.proxy]; {OS_PAC_TOOLS}{SKIPPED}",
    ),
    (
        "proxy-refused-none-allowed",
        ProxyRule(),
        {**NO_PROXY, "proxy.pac": [proxy_endpoint("wpad.example.net", "pac:wpad")]},
        False,
        "proxy not allowed: pac:wpad -> wpad.example.net (allowed: (none))",
    ),
    (
        "proxy-unreadable-and-skipped",
        ProxyRule(unsafe_pass_if_not_sent=True),
        {"proxy.env": [], "proxy.errors": [_unreadable("proxy.env", "env:ALL_PROXY", "socks")]},
        False,
        f"could not read env:ALL_PROXY (socks): {FIX}{IGNORE}[rules.proxy]; {OS_PAC_TOOLS}"
        + SKIPPED,
    ),
    (
        "proxy-required-and-skipped",
        ProxyRule(allowed_hosts=OURS, require_proxy=True, unsafe_pass_if_not_sent=True),
        {"proxy.env": [], "proxy.pac": [], "proxy.errors": []},
        False,
        "no proxy configured in proxy.env, proxy.pac; policy requires one of: "
        "proxy.example.internal; field proxy.os was not sent (not consented); field "
        f"proxy.tools was not sent (not consented){SKIPPED}",
    ),
    (
        "proxy-none-and-skipped",
        ProxyRule(unsafe_pass_if_not_sent=True),
        {"proxy.env": [], "proxy.errors": []},
        True,
        f"no proxy configured; {OS_PAC_TOOLS}{SKIPPED}",
    ),
    (
        "proxy-unreadable-ignored",
        ProxyRule(allowed_hosts=OURS, unsafe_ignore_unreadable_sources=True),
        {**NO_PROXY, "proxy.errors": [_unreadable("proxy.env", "env:ALL_PROXY")]},
        True,
        "no proxy configured",
    ),
    (
        "proxy-errors-not-sent-ignored",
        ProxyRule(
            allowed_hosts=OURS,
            fields=(ProxyRule().fields[0],),
            unsafe_ignore_unreadable_sources=True,
        ),
        {"proxy.env": [proxy_endpoint("proxy.example.internal")]},
        True,
        "every proxy allowed: env:HTTPS_PROXY -> proxy.example.internal",
    ),
    (
        "proxy-every-one-allowed",
        ProxyRule(allowed_hosts=(host_glob("*.example.internal"),)),
        {
            **NO_PROXY,
            "proxy.env": [proxy_endpoint("a.example.internal")],
            "proxy.os": [proxy_endpoint("b.example.internal", "os:system")],
        },
        True,
        "every proxy allowed: env:HTTPS_PROXY -> a.example.internal; os:system -> "
        "b.example.internal",
    ),
    (
        "proxy-any-host",
        ProxyRule(unsafe_allow_any_host=True),
        {**NO_PROXY, "proxy.tools": [proxy_endpoint("x.example.net", "git:http.proxy")]},
        True,
        "every proxy allowed: git:http.proxy -> x.example.net",
    ),
    (
        "proxy-needs-no-provider",
        ProxyRule(allowed_hosts=OURS, fields=(ProxyRule().fields[0],)),
        {
            "proxy.env": [{"source": "env:HTTP_PROXY", "host": "proxy.example.internal"}],
            "proxy.errors": [],
        },
        True,
        "every proxy allowed: env:HTTP_PROXY -> proxy.example.internal",
    ),
    (
        "proxy-nothing-sent-unsafe",
        ProxyRule(unsafe_pass_if_not_sent=True),
        {},
        True,
        f"field proxy.env was not sent (not consented); {OS_PAC_TOOLS}; passed "
        "(unsafe_pass_if_not_sent)",
    ),
    (
        "proxy-malformed-entry",
        ProxyRule(),
        {**NO_PROXY, "proxy.os": [proxy_endpoint("a"), {"source": "os:x", "host": ""}]},
        False,
        "proxy.os[1].host is not a non-empty string",
    ),
    # base URL
    (
        "base-url-every-one-allowed",
        BaseUrlRule(allowed_hosts=(host_glob("gw.example.internal"),)),
        {
            **NO_BASE,
            "baseurl.env": [base_url("gw.example.internal")],
            "baseurl.tools": [base_url("api.anthropic.com", source="claude-code:user")],
        },
        True,
        "every base URL allowed: env:ANTHROPIC_BASE_URL -> gw.example.internal (custom); "
        "claude-code:user -> api.anthropic.com (official)",
    ),
    (
        "base-url-unreadable-and-skipped",
        BaseUrlRule(unsafe_pass_if_not_sent=True),
        {
            "baseurl.env": [],
            "baseurl.errors": [
                _unreadable("baseurl.env", "env:OPENAI_BASE_URL"),
                _unreadable("baseurl.tools", "codex:user"),
            ],
        },
        False,
        f"could not read env:OPENAI_BASE_URL (invalid-url): {FIX}{IGNORE}[rules.base_url]; "
        f"field baseurl.tools was not sent (not consented){SKIPPED}",
    ),
    (
        "base-url-refused-and-skipped",
        BaseUrlRule(unsafe_pass_if_not_sent=True),
        {
            "baseurl.tools": [base_url("relay.example.net", source="codex:user")],
            "baseurl.errors": [],
        },
        False,
        "base URL not allowed: codex:user -> relay.example.net (custom); field baseurl.env was "
        f"not sent (not consented){SKIPPED}",
    ),
    (
        "base-url-none-and-skipped",
        BaseUrlRule(unsafe_pass_if_not_sent=True),
        {"baseurl.tools": [], "baseurl.errors": []},
        True,
        "no base URL set (tools use their defaults); field baseurl.env was not sent (not "
        f"consented){SKIPPED}",
    ),
    (
        "base-url-errors-entry-malformed",
        BaseUrlRule(),
        {**NO_BASE, "baseurl.errors": [{"field": "baseurl.env", "source": "env:X"}]},
        False,
        "baseurl.errors.error is not a non-empty string",
    ),
    (
        "base-url-errors-entry-without-source",
        BaseUrlRule(),
        {**NO_BASE, "baseurl.errors": [{"field": "baseurl.tools", "error": "invalid-url"}]},
        False,
        "baseurl.errors.source is not a non-empty string",
    ),
    (
        "base-url-errors-not-a-list",
        BaseUrlRule(),
        {**NO_BASE, "baseurl.errors": "invalid-url"},
        False,
        "field baseurl.errors is not a list of objects",
    ),
    (
        "base-url-errors-of-other-fields-not-read",
        BaseUrlRule(),
        {**NO_BASE, "baseurl.errors": [{"field": "proxy.env"}]},
        True,
        "no base URL set (tools use their defaults)",
    ),
    (
        "base-url-seven-unreadable-listed-as-five",
        BaseUrlRule(),
        {**NO_BASE, "baseurl.errors": [_unreadable("baseurl.env", f"env:V{i}") for i in range(7)]},
        False,
        "could not read "
        + "; ".join(f"env:V{i} (invalid-url)" for i in range(5))
        + f"; and 2 more: {FIX}{IGNORE}[rules.base_url]",
    ),
    (
        "base-url-six-relays",
        BaseUrlRule(),
        {**NO_BASE, "baseurl.env": _relays(6)},
        False,
        f"base URL not allowed: {_relay_list(5)}; and 1 more",
    ),
    (
        "base-url-five-relays",
        BaseUrlRule(),
        {**NO_BASE, "baseurl.env": _relays(5)},
        False,
        f"base URL not allowed: {_relay_list(5)}",
    ),
    (
        "base-url-without-provider",
        BaseUrlRule(),
        {**NO_BASE, "baseurl.env": [{"source": "env:ANTHROPIC_BASE_URL", "host": "x"}]},
        False,
        "baseurl.env[0].provider is not a non-empty string",
    ),
    (
        "base-url-host-too-long",
        BaseUrlRule(unsafe_allow_any_host=True),
        {**NO_BASE, "baseurl.tools": [base_url("r.example.net"), base_url("a" * 254)]},
        False,
        "baseurl.tools[1].host is not a non-empty string",
    ),
    (
        "base-url-host-of-253",
        BaseUrlRule(allowed_hosts=(host_glob("*.example.internal"),)),
        {**NO_BASE, "baseurl.env": [base_url("a" * 236 + ".example.internal")]},
        True,
        "every base URL allowed: env:ANTHROPIC_BASE_URL -> "
        + "a" * 236
        + ".example.internal (custom)",
    ),
    (
        "base-url-source-not-a-string",
        BaseUrlRule(),
        {**NO_BASE, "baseurl.env": [{**base_url("r.example.net"), "source": 3}]},
        False,
        "baseurl.env[0].source is not a non-empty string",
    ),
    # tunnels
    (
        "tunnel-deny-kinds-before-names",
        TunnelRule(deny_kinds=(name_glob("wire*"),), deny_names=(name_glob("wg*"),)),
        {"proxy.tunnels": [tunnel("wg0", "wireguard")]},
        False,
        "tunnel refused: wg0 (wireguard) matches deny_kinds 'wire*'",
    ),
    (
        "tunnel-allow-kinds-only",
        TunnelRule(allow_kinds=(name_glob("openvpn"),)),
        {"proxy.tunnels": [tunnel("tun0", "openvpn"), tunnel("wg0", "wireguard")]},
        False,
        "tunnel refused: wg0 (wireguard) matches neither allow_kinds nor allow_names",
    ),
    (
        "tunnel-allow-names-only",
        TunnelRule(allow_names=(name_glob("corp*"),)),
        {"proxy.tunnels": [tunnel("corp0", "openvpn"), tunnel("wg0", "wireguard")]},
        False,
        "tunnel refused: wg0 (wireguard) matches neither allow_kinds nor allow_names",
    ),
    (
        "tunnel-allowed-by-name-or-kind",
        TunnelRule(allow_kinds=(name_glob("openvpn"),), allow_names=(name_glob("corp*"),)),
        {"proxy.tunnels": [tunnel("tun0", "openvpn"), tunnel("corp1", "wireguard")]},
        True,
        "every tunnel allowed: tun0 (openvpn); corp1 (wireguard)",
    ),
    (
        "tunnel-deny-only-passes-others",
        TunnelRule(deny_names=(name_glob("wg*"),)),
        {"proxy.tunnels": [tunnel("tun0", "openvpn")]},
        True,
        "every tunnel allowed: tun0 (openvpn)",
    ),
    (
        "tunnel-two-refused",
        TunnelRule(deny_names=(name_glob("wg*"), name_glob("ts*"))),
        {"proxy.tunnels": [tunnel("wg0", "wireguard"), tunnel("ts0", "tailscale")]},
        False,
        "tunnel refused: wg0 (wireguard) matches deny_names 'wg*'; ts0 (tailscale) matches "
        "deny_names 'ts*'",
    ),
    (
        "tunnel-none-at-all",
        TunnelRule(deny_kinds=(name_glob("x"),)),
        {"proxy.tunnels": []},
        True,
        "no tunnel interface",
    ),
    (
        "tunnel-not-a-list",
        TunnelRule(deny_kinds=(name_glob("x"),)),
        {"proxy.tunnels": {"name": "x"}},
        False,
        "field proxy.tunnels is not a list of objects",
    ),
    (
        "tunnel-second-entry-nameless",
        TunnelRule(deny_kinds=(name_glob("x"),)),
        {"proxy.tunnels": [tunnel("a", "b"), {"kind": "k"}]},
        False,
        "proxy.tunnels[1].name is not a non-empty string",
    ),
]


@pytest.mark.parametrize("mode", [RuleMode.ENFORCE, RuleMode.REPORT])
@pytest.mark.parametrize(
    ("rule", "signals", "passed", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_decision_and_reason(
    rule: object, signals: dict[str, object], passed: bool, reason: str, mode: RuleMode
) -> None:
    rule = replace(rule, mode=mode)  # type: ignore[type-var]
    decision = Policy("t", (rule,)).evaluate(make_facts(signals))  # type: ignore[arg-type]
    (result,) = decision.results
    assert (result.rule, result.mode, result.reason) == (rule.name, mode, reason)
    assert result.passed is passed
    assert decision.allow is (passed or mode is RuleMode.REPORT)


ERRORS_UNSENT: list[tuple[object, dict[str, object], str]] = [
    (ProxyRule(fields=(ProxyRule().fields[0],)), {"proxy.env": []}, "proxy"),
    (BaseUrlRule(), {"baseurl.env": [], "baseurl.tools": []}, "base_url"),
]


@pytest.mark.parametrize(("rule", "signals", "family"), ERRORS_UNSENT)
@pytest.mark.parametrize("consented", [False, True])
def test_errors_field_not_sent_fails_closed(
    rule: object, signals: dict[str, object], family: str, consented: bool
) -> None:
    errors = "proxy.errors" if family == "proxy" else "baseurl.errors"
    state = "consented but not sent" if consented else "not sent"
    agreed = frozenset({*signals, errors}) if consented else None
    result = rule.check(make_facts(signals, consented=agreed))  # type: ignore[attr-defined]
    assert not result.passed
    assert result.reason == (
        f"field {errors} was {state}, so a source the agent could not read would go unseen; "
        f"request {errors} in the manifest, or set {IGNORE}[rules.{family}]"
    )


def test_tunnels_consented_but_not_sent() -> None:
    rule = TunnelRule(deny_kinds=(name_glob("x"),))
    facts = make_facts({}, consented=frozenset({"proxy.tunnels"}))
    for mode in RuleMode:
        result = replace(rule, mode=mode).check(facts)
        assert (result.rule, result.mode, result.passed) == ("tunnels", mode, False)
        assert result.reason == "field proxy.tunnels was consented but not sent"
