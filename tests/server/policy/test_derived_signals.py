"""What the verifier derives itself instead of trusting the agent, and where it fails closed:
host classification from policy data, canonical zones and the offset at iat, unreadable
sources. Every refusal names the rule and the reason that refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.policy import Policy, PolicyInput, PolicySchemaError, RuleMode, parse_policy
from server.policy.baseurl import BaseUrlRule
from server.policy.globs import host_glob, zone_glob
from server.policy.proxy import ProxyRule
from server.policy.timezone import TimezoneRule
from tests.server.policy.conftest import MakeFacts, base_url, proxy_endpoint

SUMMER_IAT = int(datetime(2026, 7, 1, 12, tzinfo=UTC).timestamp())
HEAD = '[policy]\nversion = "t"\n'


def _fired(rule: object, facts: PolicyInput) -> tuple[bool, str]:
    """(policy allowed, reason of the only rule)."""
    decision = Policy(version="t", rules=(rule,)).evaluate(facts)  # type: ignore[arg-type]
    (result,) = decision.results
    assert result.rule == getattr(rule, "name", None)
    return decision.allow, result.reason


def _base(*entries: dict[str, object], errors: list[dict[str, str]] | None = None) -> dict:
    return {"baseurl.env": list(entries), "baseurl.tools": [], "baseurl.errors": errors or []}


# classification: derived from policy data, the agent's value ignored


def test_a_relay_claiming_to_be_official_is_denied(facts: MakeFacts) -> None:
    lying = base_url("relay.example.net", classification="official")
    allow, reason = _fired(BaseUrlRule(), facts(_base(lying)))
    assert not allow
    assert reason == "base URL not allowed: env:ANTHROPIC_BASE_URL -> relay.example.net (custom)"


def test_an_official_host_claimed_custom_is_still_official(facts: MakeFacts) -> None:
    modest = base_url("api.anthropic.com", classification="custom")
    allow, reason = _fired(BaseUrlRule(), facts(_base(modest)))
    assert allow
    assert "api.anthropic.com (official)" in reason


def test_a_loopback_claimed_official_is_localhost(facts: MakeFacts) -> None:
    allow, reason = _fired(BaseUrlRule(), facts(_base(base_url("127.0.0.1", "official"))))
    assert not allow
    assert "127.0.0.1 (localhost)" in reason


def test_an_env_sources_provider_comes_from_the_variable(facts: MakeFacts) -> None:
    # An aggregator's own host is official for the aggregator, not for ANTHROPIC_BASE_URL.
    lying = {**base_url("openrouter.ai", "official"), "provider": "openrouter"}
    allow, reason = _fired(BaseUrlRule(), facts(_base(lying)))
    assert not allow
    assert reason == "base URL not allowed: env:ANTHROPIC_BASE_URL -> openrouter.ai (custom)"
    unknown = {**base_url("api.anthropic.com"), "source": "env:MY_OWN_BASE_URL"}
    assert not _fired(BaseUrlRule(), facts(_base(unknown)))[0]
    tool = {**base_url("openrouter.ai"), "provider": "openrouter", "source": "opencode:user"}
    assert _fired(BaseUrlRule(), facts(_base(tool)))[0], "a tool's provider id is its setting"


def test_official_hosts_are_policy_data(facts: MakeFacts) -> None:
    policy = parse_policy(
        HEAD
        + '[rules.base_url]\n[rules.base_url.official_hosts]\nanthropic = ["*.corp.example"]\n',
        source="p.toml",
    )
    gateway = facts(_base(base_url("llm.corp.example")))
    assert policy.evaluate(gateway).allow
    public = policy.evaluate(facts(_base(base_url("api.anthropic.com", "official"))))
    assert not public.allow, "a provider listed in official_hosts loses its shipped hosts"
    assert "api.anthropic.com (custom)" in public.reasons[0]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('relay = ["x.example"]', "official_hosts.relay: unknown provider"),
        ('anthropic = ["*"]', "not a provider host pattern"),
        ('anthropic = ["a.*.*.*.example"]', "not a provider host pattern"),
        ("anthropic = 3", "must be an array of strings"),
    ],
)
def test_official_hosts_are_validated(table: str, message: str) -> None:
    text = HEAD + f"[rules.base_url]\n[rules.base_url.official_hosts]\n{table}\n"
    with pytest.raises(PolicySchemaError, match=message):
        parse_policy(text, source="p.toml")


# unreadable sources: fail closed in enforce mode


def _unreadable(field: str, source: str, error: str = "invalid-url") -> dict[str, str]:
    return {"field": field, "source": source, "error": error}


@pytest.mark.parametrize("mode", [RuleMode.ENFORCE, RuleMode.REPORT])
def test_base_url_fails_closed_on_an_unreadable_source(facts: MakeFacts, mode: RuleMode) -> None:
    sent = facts(_base(errors=[_unreadable("baseurl.env", "env:ANTHROPIC_BASE_URL")]))
    allow, reason = _fired(BaseUrlRule(mode=mode), sent)
    assert allow is (mode is RuleMode.REPORT)
    assert reason.startswith("could not read env:ANTHROPIC_BASE_URL (invalid-url): fix that")
    assert "unsafe_ignore_unreadable_sources = true in [rules.base_url]" in reason


def test_base_url_unreadable_and_refused_both_named(facts: MakeFacts) -> None:
    sent = facts(
        _base(
            base_url("relay.example.net"),
            errors=[_unreadable("baseurl.tools", "codex:user", "invalid-toml")],
        )
    )
    allow, reason = _fired(BaseUrlRule(), sent)
    assert not allow
    assert "relay.example.net (custom)" in reason
    assert "could not read codex:user (invalid-toml)" in reason


def test_base_url_errors_not_sent_fails_closed(facts: MakeFacts) -> None:
    sent = facts({"baseurl.env": [], "baseurl.tools": []})
    allow, reason = _fired(BaseUrlRule(), sent)
    assert not allow
    assert reason.startswith("field baseurl.errors was not sent, so a source the agent could")
    assert "request baseurl.errors in the manifest" in reason


def test_unsafe_ignore_unreadable_sources_opts_out(facts: MakeFacts) -> None:
    rule = BaseUrlRule(unsafe_ignore_unreadable_sources=True)
    errors = [_unreadable("baseurl.env", "env:ANTHROPIC_BASE_URL")]
    assert _fired(rule, facts(_base(errors=errors)))[0]
    assert _fired(rule, facts({"baseurl.env": [], "baseurl.tools": []}))[0]


def test_unsafe_ignore_is_read_from_the_policy_file(facts: MakeFacts) -> None:
    text = HEAD + "[rules.base_url]\nunsafe_ignore_unreadable_sources = true\n"
    policy = parse_policy(text, source="p.toml")
    errors = [_unreadable("baseurl.env", "env:ANTHROPIC_BASE_URL")]
    assert policy.evaluate(facts(_base(errors=errors))).allow


def test_errors_of_fields_the_rule_does_not_check_are_ignored(facts: MakeFacts) -> None:
    rule = BaseUrlRule(fields=(BaseUrlRule().fields[0],))
    errors = [_unreadable("baseurl.tools", "codex:user", "invalid-toml")]
    assert _fired(rule, facts({"baseurl.env": [], "baseurl.errors": errors}))[0]


def test_proxy_fails_closed_on_an_unreadable_source(facts: MakeFacts) -> None:
    ours = (host_glob("proxy.example.internal"),)
    sent = {f"proxy.{k}": [] for k in ("env", "os", "pac", "tools")}
    sent["proxy.errors"] = [_unreadable("proxy.env", "env:ALL_PROXY")]
    allow, reason = _fired(ProxyRule(allowed_hosts=ours), facts(sent))
    assert not allow
    assert reason.startswith("could not read env:ALL_PROXY (invalid-url)")
    assert "[rules.proxy]" in reason
    narrowed = ProxyRule(allowed_hosts=ours, fields=(ProxyRule().fields[3],))
    assert _fired(narrowed, facts(sent))[0], "proxy.env errors do not concern proxy.tools"
    del sent["proxy.errors"]
    allow, reason = _fired(ProxyRule(allowed_hosts=ours), facts(sent))
    assert not allow
    assert "field proxy.errors was not sent" in reason
    sent["proxy.errors"] = []
    sent["proxy.env"] = [proxy_endpoint("proxy.example.internal")]
    assert _fired(ProxyRule(allowed_hosts=ours), facts(sent))[0]


# time zones: canonical names, unknown names, offset at iat


def _zone(zone: object, offset: int | None = None, iat: int | None = SUMMER_IAT) -> PolicyInput:
    signals: dict[str, object] = {"timezone.iana": zone}
    if offset is not None:
        signals["timezone.utc_offset_minutes"] = offset
    from tests.server.policy.conftest import make_facts

    base = make_facts(signals)
    return PolicyInput(
        device_id=base.device_id,
        key_class=base.key_class,
        clock_skew_s=0,
        signals=base.signals,
        consented=base.consented,
        iat=iat,
    )


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [("Asia/Calcutta", "Asia/Kolkata"), ("US/Pacific", "America/Los_Angeles"), ("UTC", "Etc/UTC")],
)
def test_an_alias_cannot_pass_a_deny_list_of_canonical_names(alias: str, canonical: str) -> None:
    rule = TimezoneRule(deny=(zone_glob(canonical),))
    allow, reason = _fired(rule, _zone(alias))
    assert not allow
    assert reason == f"zone {canonical} (sent as {alias}) matches deny {canonical!r}"


def test_policy_names_are_canonicalized_and_checked_at_load() -> None:
    policy = parse_policy(HEAD + '[rules.timezone]\ndeny = ["asia/calcutta"]\n', source="p.toml")
    (rule,) = policy.rules
    assert isinstance(rule, TimezoneRule)
    assert [g.pattern for g in rule.deny] == ["Asia/Kolkata"]
    assert not policy.evaluate(_zone("Asia/Kolkata")).allow
    with pytest.raises(PolicySchemaError, match="'Mars/Olympus' is not a zone in tzdata"):
        parse_policy(HEAD + '[rules.timezone]\ndeny = ["Mars/Olympus"]\n', source="p.toml")
    with pytest.raises(PolicySchemaError, match="'US/\\*' matches no canonical tzdata zone"):
        parse_policy(HEAD + '[rules.timezone]\ndeny = ["US/*"]\n', source="p.toml")


def test_an_unknown_zone_name_is_refused() -> None:
    rule = TimezoneRule(deny=(zone_glob("Etc/*"),))
    allow, reason = _fired(rule, _zone("Atlantis/Capital"))
    assert not allow
    assert reason.startswith("zone 'Atlantis/Capital' is not in tzdata")


def test_an_offset_that_is_not_the_zones_at_iat_is_an_inconsistency() -> None:
    rule = TimezoneRule(allow=(zone_glob("Europe/*"),))
    assert _fired(rule, _zone("Europe/Berlin", offset=120))[0]
    allow, reason = _fired(rule, _zone("Europe/Berlin", offset=0))
    assert not allow
    assert reason == (
        "zone Europe/Berlin matches allow 'Europe/*', but the reported offset UTC+00:00 is not "
        "Europe/Berlin's UTC+02:00 at iat 2026-07-01T12:00:00+00:00: the clock and the zone "
        "disagree"
    )
    winter = int(datetime(2026, 1, 15, tzinfo=UTC).timestamp())
    assert _fired(rule, _zone("Europe/Berlin", offset=60, iat=winter))[0]
    assert _fired(rule, _zone("Europe/Berlin", offset=0, iat=None))[0], "no iat, no check"
    lenient = parse_policy(
        HEAD + '[rules.timezone]\nallow = ["Europe/*"]\nunsafe_allow_offset_mismatch = true\n',
        source="p.toml",
    ).rules[0]
    allow, reason = _fired(lenient, _zone("Europe/Berlin", offset=0))
    assert allow
    assert reason.endswith("(unsafe_allow_offset_mismatch)")
