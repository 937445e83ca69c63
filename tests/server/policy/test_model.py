"""Policy.evaluate: fail closed when empty, report rules never deny, every rule is listed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from attest.keys import KeyClass
from server.policy import Policy, PolicyInput, RuleMode, RuleResult, policy_warnings
from server.policy.defaults import default_policy
from server.policy.globs import zone_glob
from server.policy.rules import ClockSkewRule, KeyClassRule
from server.policy.timezone import TimezoneRule
from tests.server.policy.conftest import make_facts


class FixedRule:
    """A rule with a fixed verdict."""

    def __init__(self, index: int, mode: RuleMode, passed: bool) -> None:
        self.name = f"fixed{index}"
        self.mode = mode
        self.passed = passed

    def check(self, facts: PolicyInput) -> RuleResult:
        return RuleResult(self.name, self.mode, self.passed, "fixed")


def test_empty_policy_fails_closed() -> None:
    policy = Policy(version="v", rules=())
    decision = policy.evaluate(make_facts())
    assert decision.allow is False
    assert decision.results == (
        RuleResult("policy", RuleMode.ENFORCE, False, "policy has no rules"),
    )
    assert (decision.policy_version, decision.token) == ("v", policy.token)
    assert decision.reasons == ["policy (enforce): policy has no rules"]


@given(st.lists(st.tuples(st.sampled_from(list(RuleMode)), st.booleans()), max_size=12))
def test_allow_iff_every_enforce_rule_passes(verdicts: list[tuple[RuleMode, bool]]) -> None:
    rules = tuple(FixedRule(i, mode, ok) for i, (mode, ok) in enumerate(verdicts))
    decision = Policy(version="v", rules=rules).evaluate(make_facts())
    if not rules:
        assert not decision.allow
        return
    assert [r.rule for r in decision.results] == [r.name for r in rules]
    assert decision.allow == all(ok for mode, ok in verdicts if mode is RuleMode.ENFORCE)
    assert len(decision.reasons) == sum(1 for _, ok in verdicts if not ok)


def test_default_policy_still_works() -> None:
    decision = default_policy().evaluate(
        make_facts({"timezone.iana": "Etc/UTC"}, key_class=KeyClass.SOFTWARE, clock_skew_s=5)
    )
    assert decision.allow
    assert [r.rule for r in decision.results] == ["key_class", "clock_skew", "required_fields"]


def test_warnings_name_unsafe_options_and_missing_required_fields() -> None:
    policy = Policy(
        version="v",
        rules=(
            KeyClassRule(allowed=frozenset(KeyClass)),
            ClockSkewRule(max_skew_s=60, mode=RuleMode.REPORT),
            TimezoneRule(deny=(zone_glob("Etc/*"),), unsafe_pass_if_not_sent=True),
        ),
    )
    assert policy_warnings(policy) == (
        "no required_fields rule: the manifest's enforce fields are not checked",
        "rule timezone sets unsafe_pass_if_not_sent = true",
    )
    assert policy_warnings(default_policy()) == ()
