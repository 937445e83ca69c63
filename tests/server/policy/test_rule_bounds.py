"""Bounds and exact reasons of the key-class, clock-skew, required-fields and usage rules, and
the order in which a decision lists what fired."""

from __future__ import annotations

import pytest

from attest.catalog import FieldId
from attest.keys import KeyClass
from server.policy import Policy, RuleMode, RuleResult
from server.policy.defaults import default_policy
from server.policy.model import TokenSettings
from server.policy.rules import ClockSkewRule, KeyClassRule, RequiredFieldsRule
from server.policy.usage import ObservedUsage, UsageRule
from tests.server.policy.conftest import make_facts


def test_key_class_reasons() -> None:
    rule = KeyClassRule(allowed=frozenset({KeyClass.TPM2, KeyClass.HARDWARE_UNVERIFIED}))
    passed = rule.check(make_facts(key_class=KeyClass.HARDWARE_UNVERIFIED))
    assert (passed.passed, passed.reason) == (True, "key class hardware-unverified is allowed")
    failed = rule.check(make_facts(key_class=KeyClass.SOFTWARE))
    assert (failed.rule, failed.passed) == ("key_class", False)
    assert failed.reason == (
        "key class software is not allowed (policy requires hardware-unverified, tpm2)"
    )


@pytest.mark.parametrize(
    ("skew", "passed", "reason"),
    [
        (120, True, "clock skew +120 s within 120 s"),
        (-120, True, "clock skew -120 s within 120 s"),
        (121, False, "clock skew +121 s exceeds the 120 s bound"),
        (-121, False, "clock skew -121 s exceeds the 120 s bound"),
        (0, True, "clock skew +0 s within 120 s"),
    ],
)
def test_clock_skew_bound_is_inclusive(skew: int, passed: bool, reason: str) -> None:
    result = ClockSkewRule(max_skew_s=120).check(make_facts(clock_skew_s=skew))
    assert (result.rule, result.passed, result.reason) == ("clock_skew", passed, reason)


def test_required_fields_lists_every_missing_field_sorted() -> None:
    rule = RequiredFieldsRule(fields=frozenset({FieldId("proxy.env"), FieldId("baseurl.env")}))
    facts = make_facts({"baseurl.env": []}, required=frozenset({"timezone.iana"}))
    result = rule.check(facts)
    assert (result.rule, result.passed) == ("required_fields", False)
    assert result.reason == ("required fields not consented or not sent: proxy.env, timezone.iana")
    full = make_facts({"baseurl.env": [], "proxy.env": [], "timezone.iana": None})
    assert rule.check(full) == RuleResult(
        "required_fields", RuleMode.ENFORCE, True, "all required fields present"
    )


def test_consent_alone_does_not_satisfy_a_required_field() -> None:
    facts = make_facts({}, consented=frozenset({"timezone.iana"}), required={"timezone.iana"})
    assert not RequiredFieldsRule().check(facts).passed


def test_reasons_list_enforce_rules_first_in_rule_order() -> None:
    class Fixed:
        def __init__(self, name: str, mode: RuleMode, passed: bool) -> None:
            self.name, self.mode, self.passed = name, mode, passed

        def check(self, facts: object) -> RuleResult:
            return RuleResult(self.name, self.mode, self.passed, f"{self.name} said so")

    rules = (
        Fixed("r1", RuleMode.REPORT, False),
        Fixed("e1", RuleMode.ENFORCE, True),
        Fixed("e2", RuleMode.ENFORCE, False),
        Fixed("r2", RuleMode.REPORT, False),
        Fixed("e3", RuleMode.ENFORCE, False),
    )
    decision = Policy("v", rules).evaluate(make_facts())  # type: ignore[arg-type]
    assert not decision.allow
    assert decision.reasons == [
        "e2 (enforce): e2 said so",
        "e3 (enforce): e3 said so",
        "r1 (report): r1 said so",
        "r2 (report): r2 said so",
    ]


def test_the_default_policy() -> None:
    policy = default_policy()
    assert policy.version == "default-1"
    assert policy.token == TokenSettings(ttl_s=900, audience="envattest")
    assert policy.rules == (
        KeyClassRule(allowed=frozenset(KeyClass)),
        ClockSkewRule(max_skew_s=300),
        RequiredFieldsRule(),
    )
    assert not policy.evaluate(make_facts(clock_skew_s=301)).allow
    missing = make_facts(required=frozenset({"timezone.iana"}))
    assert not policy.evaluate(missing).allow


@pytest.mark.parametrize(
    ("networks", "requests", "rule", "reason"),
    [
        (3, 600, "usage", "usage within limits"),
        (
            4,
            600,
            "usage.max_networks_per_token",
            "token used from 4 client networks; the limit is 3",
        ),
        (3, 601, "usage.max_requests_per_minute", "601 requests this minute; the limit is 600"),
        (
            9,
            999,
            "usage.max_networks_per_token",
            "token used from 9 client networks; the limit is 3",
        ),
    ],
)
def test_usage_limits_are_inclusive(networks: int, requests: int, rule: str, reason: str) -> None:
    limits = UsageRule(max_networks_per_token=3, max_requests_per_minute=600, mode=RuleMode.REPORT)
    result = limits.check_usage(ObservedUsage(networks=networks, requests_this_minute=requests))
    assert (result.rule, result.mode, result.reason) == (rule, RuleMode.REPORT, reason)
    assert result.passed is (rule == "usage")


def test_usage_without_a_limit_never_fires() -> None:
    busy = ObservedUsage(networks=1_000, requests_this_minute=10**6)
    assert UsageRule(None, None).check_usage(busy).passed
    assert UsageRule(None, 5).check_usage(ObservedUsage(1_000, 5)).passed
    assert UsageRule(5, None).check_usage(ObservedUsage(5, 10**6)).passed
    result = UsageRule(1, 1, mode=RuleMode.REPORT).check(make_facts())
    assert result == RuleResult("usage", RuleMode.REPORT, True, "usage is checked at forward auth")
