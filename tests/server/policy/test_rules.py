"""Each rule family: pass and fail, enforce and report, absent and malformed signals."""

from __future__ import annotations

import pytest

from attest.keys import KeyClass
from server.policy import Policy, RuleMode
from server.policy.baseurl import BaseUrlRule
from server.policy.globs import host_glob, name_glob, zone_glob
from server.policy.proxy import ProxyRule
from server.policy.rules import ClockSkewRule, KeyClassRule, RequiredFieldsRule
from server.policy.timezone import TimezoneRule
from server.policy.tunnels import TunnelRule
from tests.server.policy.conftest import MakeFacts, base_url, proxy_endpoint, tunnel

MODES = [RuleMode.ENFORCE, RuleMode.REPORT]


def _decide(rule: object, facts: object) -> tuple[bool, bool, str]:
    """(rule passed, policy allowed, reason) with ``rule`` as the only rule."""
    policy = Policy(version="t", rules=(rule,))  # type: ignore[arg-type]
    decision = policy.evaluate(facts)  # type: ignore[arg-type]
    (result,) = decision.results
    return result.passed, decision.allow, result.reason


@pytest.mark.parametrize("mode", MODES)
def test_key_class(facts: MakeFacts, mode: RuleMode) -> None:
    rule = KeyClassRule(allowed=frozenset({KeyClass.TPM2}), mode=mode)
    assert _decide(rule, facts(key_class=KeyClass.TPM2))[:2] == (True, True)
    passed, allow, reason = _decide(rule, facts(key_class=KeyClass.SOFTWARE))
    assert not passed
    assert allow is (mode is RuleMode.REPORT)
    assert "key class software is not allowed (policy requires tpm2)" in reason


@pytest.mark.parametrize("mode", MODES)
def test_clock_skew(facts: MakeFacts, mode: RuleMode) -> None:
    rule = ClockSkewRule(max_skew_s=60, mode=mode)
    assert _decide(rule, facts(clock_skew_s=-60))[:2] == (True, True)
    passed, allow, reason = _decide(rule, facts(clock_skew_s=61))
    assert (passed, allow) == (False, mode is RuleMode.REPORT)
    assert "exceeds the 60 s bound" in reason


@pytest.mark.parametrize("mode", MODES)
def test_required_fields_from_manifest_and_policy(facts: MakeFacts, mode: RuleMode) -> None:
    rule = RequiredFieldsRule(fields=frozenset({"proxy.env"}), mode=mode)  # type: ignore[arg-type]
    sent = facts({"timezone.iana": "Etc/UTC", "proxy.env": []}, required={"timezone.iana"})
    assert _decide(rule, sent)[:2] == (True, True)
    missing = facts({"timezone.iana": "Etc/UTC"}, required={"timezone.iana"})
    passed, allow, reason = _decide(rule, missing)
    assert (passed, allow) == (False, mode is RuleMode.REPORT)
    assert "proxy.env" in reason


# timezone


@pytest.mark.parametrize(
    ("zone", "passed", "reason"),
    [
        ("Europe/Berlin", True, "matches allow 'Europe/*'"),
        ("Europe/Paris", False, "matches deny 'Europe/Paris'"),
        # Names are canonicalized through tzdata before any glob sees them.
        ("UTC", True, "zone Etc/UTC (sent as UTC) matches allow 'Etc/UTC'"),
        ("Asia/Calcutta", False, "zone Asia/Kolkata (sent as Asia/Calcutta) matches deny"),
        # Names tzdata does not know are refused, whatever the globs say.
        ("europe/berlin", False, "zone 'europe/berlin' is not in tzdata"),
        ("Europe/Nowhere", False, "zone 'Europe/Nowhere' is not in tzdata"),
        ("Asia/Tokyo", False, "matches none of allow: Europe/*, Etc/UTC"),
        ("Etc/UTC", True, "matches allow 'Etc/UTC'"),
        ("Etc/UTC2", False, "is not in tzdata"),
        (None, False, "zone unknown (timezone.iana is null)"),
        (42, False, "field timezone.iana is not a zone name"),
        ("", False, "is not a zone name"),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_timezone_allow_and_deny(
    facts: MakeFacts, zone: object, passed: bool, reason: str, mode: RuleMode
) -> None:
    rule = TimezoneRule(
        allow=(zone_glob("Europe/*"), zone_glob("Etc/UTC")),
        deny=(zone_glob("Europe/Paris"), zone_glob("Asia/Kolkata")),
        mode=mode,
    )
    got, allow, why = _decide(rule, facts({"timezone.iana": zone}))
    assert got is passed
    assert allow is (passed or mode is RuleMode.REPORT)
    assert reason in why


def test_timezone_deny_only(facts: MakeFacts) -> None:
    rule = TimezoneRule(deny=(zone_glob("Etc/*"),))
    assert _decide(rule, facts({"timezone.iana": "America/Argentina/Salta"}))[0]
    assert not _decide(rule, facts({"timezone.iana": "Etc/GMT+5"}))[0]


def test_timezone_unknown_zone_opt_in(facts: MakeFacts) -> None:
    rule = TimezoneRule(allow=(zone_glob("Europe/*"),), unsafe_allow_unknown_zone=True)
    passed, _, reason = _decide(rule, facts({"timezone.iana": None}))
    assert passed
    assert "unsafe_allow_unknown_zone" in reason


@pytest.mark.parametrize("mode", MODES)
def test_timezone_not_sent(facts: MakeFacts, mode: RuleMode) -> None:
    rule = TimezoneRule(allow=(zone_glob("Europe/*"),), mode=mode)
    passed, allow, reason = _decide(rule, facts({}))
    assert (passed, allow) == (False, mode is RuleMode.REPORT)
    assert reason == "field timezone.iana was not sent (not consented)"
    passed, _, reason = _decide(rule, facts({}, consented={"timezone.iana"}))
    assert reason == "field timezone.iana was consented but not sent"


def test_timezone_not_sent_opt_out(facts: MakeFacts) -> None:
    rule = TimezoneRule(allow=(zone_glob("Europe/*"),), unsafe_pass_if_not_sent=True)
    passed, allow, reason = _decide(rule, facts({}))
    assert (passed, allow) == (True, True)
    assert reason.endswith("passed (unsafe_pass_if_not_sent)")


# base URL

BASE_FIELDS_EMPTY: dict[str, object] = {
    "baseurl.env": [],
    "baseurl.tools": [],
    "baseurl.errors": [],
}


def _base(
    *entries: dict[str, object], tools: list[dict[str, object]] | None = None
) -> dict[str, object]:
    return {"baseurl.env": list(entries), "baseurl.tools": tools or [], "baseurl.errors": []}


@pytest.mark.parametrize(
    ("entry", "passed"),
    [
        (base_url("api.anthropic.com", "official"), True),
        (base_url("127.0.0.1", "localhost"), False),
        (base_url("10.0.0.5", "private-network"), False),
        (base_url("relay.example.net", "custom"), False),
        (base_url("llm-gateway.example.internal", "custom"), True),
        (base_url("LLM-Gateway.Example.Internal.", "custom"), True),
        (base_url("a.b.example.internal", "custom"), True),
        (base_url("example.internal", "custom"), False),
        (base_url("evilexample.internal", "custom"), False),
        (base_url("example.internal.evil.net", "custom"), False),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_base_url_hosts(
    facts: MakeFacts, entry: dict[str, object], passed: bool, mode: RuleMode
) -> None:
    rule = BaseUrlRule(
        allowed_hosts=(host_glob("llm-gateway.example.internal"), host_glob("*.example.internal")),
        mode=mode,
    )
    got, allow, reason = _decide(rule, facts(_base(entry)))
    assert got is passed
    assert allow is (passed or mode is RuleMode.REPORT)
    if not passed:
        assert reason.startswith("base URL not allowed: env:ANTHROPIC_BASE_URL -> ")


def test_base_url_classification_switches(facts: MakeFacts) -> None:
    local = facts(_base(base_url("localhost", "localhost")))
    private = facts(_base(base_url("192.168.1.2", "private-network")))
    official = facts(_base(base_url("api.openai.com", "official")))
    assert _decide(BaseUrlRule(allow_localhost=True), local)[0]
    assert not _decide(BaseUrlRule(allow_localhost=True), private)[0]
    assert _decide(BaseUrlRule(allow_private_network=True), private)[0]
    assert not _decide(BaseUrlRule(allow_official=False), official)[0]
    assert _decide(BaseUrlRule(unsafe_allow_any_host=True), private)[0]


def test_base_url_checks_tools_too(facts: MakeFacts) -> None:
    sent = facts(_base(tools=[base_url("relay.example.net", source="claude-code:user")]))
    passed, _, reason = _decide(BaseUrlRule(), sent)
    assert not passed
    assert "claude-code:user -> relay.example.net (custom)" in reason


def test_base_url_none_set_passes(facts: MakeFacts) -> None:
    passed, _, reason = _decide(BaseUrlRule(), facts(BASE_FIELDS_EMPTY))
    assert passed
    assert reason == "no base URL set (tools use their defaults)"


def test_base_url_lists_at_most_five(facts: MakeFacts) -> None:
    relays = [base_url(f"relay{i}.example.net") for i in range(8)]
    _, _, reason = _decide(BaseUrlRule(), facts(_base(*relays)))
    assert "relay4.example.net" in reason
    assert "relay5.example.net" not in reason
    assert reason.endswith("and 3 more")


@pytest.mark.parametrize(
    "value",
    [
        "not a list",
        [1],
        [{"source": "env:X", "host": "h"}],
        [{**base_url("h"), "host": ""}],
    ],
)
def test_base_url_malformed_fails(facts: MakeFacts, value: object) -> None:
    passed, _, reason = _decide(BaseUrlRule(), facts({"baseurl.env": value, "baseurl.tools": []}))
    assert not passed
    assert "baseurl.env" in reason


def test_base_url_partly_not_sent(facts: MakeFacts) -> None:
    sent = facts({"baseurl.env": [base_url("relay.example.net")]})
    passed, _, reason = _decide(BaseUrlRule(), sent)
    assert not passed
    assert reason == "field baseurl.tools was not sent (not consented)"
    lenient = BaseUrlRule(unsafe_pass_if_not_sent=True)
    passed, _, reason = _decide(lenient, sent)
    assert not passed, "fields that were sent are still checked"
    assert "relay.example.net" in reason
    assert "baseurl.tools was not sent (not consented), skipped" in reason
    passed, _, _ = _decide(lenient, facts({}))
    assert passed


def test_base_url_narrowed_fields(facts: MakeFacts) -> None:
    rule = BaseUrlRule(fields=(BaseUrlRule().fields[0],))
    assert _decide(rule, facts({"baseurl.env": [], "baseurl.errors": []}))[0]


# proxy

OURS = (host_glob("proxy.example.internal"),)


def _proxies(**by_field: list[dict[str, object]]) -> dict[str, object]:
    sent: dict[str, object] = {f"proxy.{k}": [] for k in ("env", "os", "pac", "tools", "errors")}
    sent.update({f"proxy.{k}": v for k, v in by_field.items()})
    return sent


@pytest.mark.parametrize("mode", MODES)
def test_proxy_only_ours(facts: MakeFacts, mode: RuleMode) -> None:
    rule = ProxyRule(allowed_hosts=OURS, mode=mode)
    assert _decide(rule, facts(_proxies(env=[proxy_endpoint("proxy.example.internal")])))[0]
    assert _decide(rule, facts(_proxies()))[:2] == (True, True)
    other = facts(_proxies(tools=[proxy_endpoint("127.0.0.1", source="git:http.proxy")]))
    passed, allow, reason = _decide(rule, other)
    assert (passed, allow) == (False, mode is RuleMode.REPORT)
    assert "git:http.proxy -> 127.0.0.1" in reason
    assert "allowed: proxy.example.internal" in reason


def test_proxy_none_allowed(facts: MakeFacts) -> None:
    rule = ProxyRule(allowed_hosts=())
    assert _decide(rule, facts(_proxies()))[0]
    assert not _decide(rule, facts(_proxies(pac=[proxy_endpoint("wpad.example.internal")])))[0]


def test_proxy_required(facts: MakeFacts) -> None:
    rule = ProxyRule(allowed_hosts=OURS, require_proxy=True, fields=(ProxyRule().fields[0],))
    passed, _, reason = _decide(rule, facts({"proxy.env": [], "proxy.errors": []}))
    assert not passed
    assert reason.startswith("no proxy configured in proxy.env; policy requires one of")
    ours = [proxy_endpoint("proxy.example.internal")]
    assert _decide(rule, facts({"proxy.env": ours, "proxy.errors": []}))[0]


def test_proxy_any_host(facts: MakeFacts) -> None:
    rule = ProxyRule(unsafe_allow_any_host=True, require_proxy=True)
    assert _decide(rule, facts(_proxies(os=[proxy_endpoint("anything.example.net")])))[0]
    assert not _decide(rule, facts(_proxies()))[0]


def test_proxy_not_sent(facts: MakeFacts) -> None:
    passed, _, reason = _decide(ProxyRule(allowed_hosts=OURS), facts({"proxy.env": []}))
    assert not passed
    assert "field proxy.os was not sent (not consented)" in reason
    assert "proxy.tools" in reason


# tunnels


@pytest.mark.parametrize(
    ("tunnels", "passed", "reason"),
    [
        ([], True, "no tunnel interface"),
        ([tunnel("corpvpn0", "openvpn")], True, "every tunnel allowed: corpvpn0 (openvpn)"),
        ([tunnel("wg0", "wireguard")], False, "wg0 (wireguard) matches deny_kinds 'wireguard'"),
        ([tunnel("corpvpn-ts", "tailscale")], False, "matches deny_names 'corpvpn-ts'"),
        ([tunnel("tun3", "openvpn")], False, "tun3 (openvpn) matches neither allow_kinds nor"),
        ([tunnel("zt1", "ZeroTier")], True, "every tunnel allowed"),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_tunnels(
    facts: MakeFacts, tunnels: list[object], passed: bool, reason: str, mode: RuleMode
) -> None:
    rule = TunnelRule(
        deny_kinds=(name_glob("wireguard"),),
        deny_names=(name_glob("corpvpn-ts"),),
        allow_names=(name_glob("corpvpn*"),),
        allow_kinds=(name_glob("zerotier"),),
        mode=mode,
    )
    got, allow, why = _decide(rule, facts({"proxy.tunnels": tunnels}))
    assert got is passed
    assert allow is (passed or mode is RuleMode.REPORT)
    assert reason in why


def test_tunnels_deny_all_and_absence(facts: MakeFacts) -> None:
    rule = TunnelRule(deny_kinds=(name_glob("*"),))
    assert not _decide(rule, facts({"proxy.tunnels": [tunnel("utun4", "utun")]}))[0]
    passed, _, reason = _decide(rule, facts({}))
    assert not passed
    assert reason == "field proxy.tunnels was not sent (not consented)"
    passed, _, _ = _decide(
        TunnelRule(deny_kinds=rule.deny_kinds, unsafe_pass_if_not_sent=True), facts({})
    )
    assert passed


def test_tunnels_malformed(facts: MakeFacts) -> None:
    rule = TunnelRule(deny_kinds=(name_glob("wireguard"),))
    passed, _, reason = _decide(rule, facts({"proxy.tunnels": [{"name": "wg0"}]}))
    assert not passed
    assert reason == "proxy.tunnels[0].kind is not a non-empty string"
