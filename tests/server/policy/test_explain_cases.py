"""Offline explain, case by case: which claims are refused and how, the facts and notes it
derives, the warnings a reviewer reads and the exact text a person sees."""

from __future__ import annotations

import json
import re

import pytest

from attest.catalog import FieldId
from attest.keys import KeyClass
from server.policy import (
    Decision,
    EvidenceInputError,
    Policy,
    PolicyInput,
    RuleMode,
    RuleResult,
    TokenSettings,
    explain,
    explain_evidence,
    facts_from_evidence_claims,
    policy_warnings,
    read_evidence_claims,
    render_decision,
    render_explanation,
)
from server.policy.explain import OFFLINE_NOTE
from server.policy.globs import zone_glob
from server.policy.rules import ClockSkewRule, KeyClassRule, RequiredFieldsRule
from server.policy.timezone import TimezoneRule
from tests.server.policy.conftest import VECTORS

JWS = (VECTORS / "evidence-relay.jws").read_bytes()
CLAIMS = json.loads((VECTORS / "evidence-relay.claims.json").read_bytes())
IAT = 1_790_000_100
AGENT_FIX = "Give evidence produced by the envattest agent."
AS_WRITTEN = "Give the compact JWS or the claims JSON as the agent wrote it."
AS_SENT = "Give the evidence exactly as sent (header.payload.signature) or its claims JSON."


def _claims(**change: object) -> dict[str, object]:
    claims = dict(CLAIMS)
    for name, value in change.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def test_surrounding_whitespace_is_ignored() -> None:
    raw = json.dumps(CLAIMS).encode()
    assert read_evidence_claims(b"\n  " + raw + b"\n", source="e") == CLAIMS
    assert read_evidence_claims(b" " + JWS.strip() + b"\r\n", source="e") == CLAIMS


@pytest.mark.parametrize(
    ("data", "problem", "fix"),
    [
        (b"{not json", r"^not valid JSON \(", AS_WRITTEN),
        (b"{\xff}", r"^not valid JSON \(", AS_WRITTEN),
        (b"[1, 2]", r"^claims JSON must be an object$", "Give the claims object."),
        (b"", r"^not a compact JWS evidence \(", AS_SENT),
        (b"a.b.c", r"^not a compact JWS evidence \(", AS_SENT),
    ],
)
def test_unreadable_evidence_says_what_to_give(data: bytes, problem: str, fix: str) -> None:
    with pytest.raises(EvidenceInputError) as caught:
        read_evidence_claims(data, source="ev.jws")
    error = caught.value
    assert re.search(problem, error.problem), error.problem
    assert error.fix == fix
    assert (error.source, error.line, error.key) == ("ev.jws", None, None)
    assert str(error).startswith("ev.jws: ")


BAD_CLAIMS: list[tuple[str, dict[str, object], str, str]] = [
    ("sub-absent", {"sub": None}, "sub", "a non-empty string"),
    ("sub-number", {"sub": 7}, "sub", "a non-empty string"),
    ("sub-empty", {"sub": ""}, "sub", "a non-empty string"),
    ("iat-absent", {"iat": None}, "iat", "an integer"),
    ("iat-bool", {"iat": False}, "iat", "an integer"),
    ("iat-float", {"iat": 1.5}, "iat", "an integer"),
    ("iat-text", {"iat": "1790000100"}, "iat", "an integer"),
    ("consent-absent", {"consent": None}, "consent.fields", "a list of field ids"),
    ("consent-list", {"consent": ["timezone.iana"]}, "consent.fields", "a list of field ids"),
    ("fields-absent", {"consent": {}}, "consent.fields", "a list of field ids"),
    ("fields-number", {"consent": {"fields": [1]}}, "consent.fields", "a list of field ids"),
    ("fields-mixed", {"consent": {"fields": ["a", None]}}, "consent.fields", "a list of field ids"),
    ("signals-absent", {"signals": None}, "signals", "an object"),
    ("signals-list", {"signals": [["timezone.iana", "Etc/UTC"]]}, "signals", "an object"),
    (
        "signals-unknown",
        {"signals": {"zz.b": 1, "location.gps": 1}},
        "signals.location.gps",
        "a catalog field",
    ),
]


@pytest.mark.parametrize(
    ("change", "key", "what"), [c[1:] for c in BAD_CLAIMS], ids=[c[0] for c in BAD_CLAIMS]
)
def test_claims_refused_naming_the_claim(change: dict[str, object], key: str, what: str) -> None:
    with pytest.raises(EvidenceInputError) as caught:
        facts_from_evidence_claims(
            _claims(**change), key_class=KeyClass.TPM2, now=IAT, source="e.json"
        )
    assert str(caught.value) == f"e.json: {key}: claim {key} must be {what}. {AGENT_FIX}"


def test_claims_refused_by_default_source() -> None:
    with pytest.raises(EvidenceInputError, match=r"^<claims>: sub: "):
        facts_from_evidence_claims(_claims(sub=None), key_class=KeyClass.TPM2, now=IAT)


def test_facts_carry_every_claim_through() -> None:
    required = frozenset({FieldId("timezone.iana")})
    facts = facts_from_evidence_claims(
        _claims(consent={"fields": []}, signals={"timezone.iana": "Etc/UTC"}),
        key_class=KeyClass.HARDWARE_UNVERIFIED,
        now=IAT - 7,
        required=required,
    )
    assert facts == PolicyInput(
        device_id="dev-relay-1",
        key_class=KeyClass.HARDWARE_UNVERIFIED,
        clock_skew_s=-7,
        signals={FieldId("timezone.iana"): "Etc/UTC"},
        consented=frozenset(),
        required=required,
        iat=IAT,
    )


def test_facts_as_of_iat_have_no_skew() -> None:
    facts = facts_from_evidence_claims(CLAIMS, key_class=KeyClass.TPM2, now=None)
    assert (facts.clock_skew_s, facts.iat) == (0, IAT)


SKEW = ClockSkewRule(max_skew_s=60)


def test_explain_evidence_as_of_iat_with_every_note() -> None:
    policy = Policy(version="v", rules=(SKEW,))
    explanation = explain_evidence(policy, JWS, key_class=KeyClass.TPM2)
    assert explanation.facts.clock_skew_s == 0
    assert explanation.facts.required == frozenset()
    assert explanation.decision.allow
    assert explanation.notes == (
        OFFLINE_NOTE,
        "key class tpm2 was given, not proven",
        "clock skew evaluated as of the evidence iat (pass now to check it)",
        "no manifest given: its enforce fields were not required",
    )


def test_explain_evidence_with_now_and_manifest() -> None:
    required = frozenset({FieldId("location.gps")})
    policy = Policy(version="v", rules=(SKEW, RequiredFieldsRule()))
    explanation = explain_evidence(
        policy,
        json.dumps(CLAIMS).encode(),
        key_class=KeyClass.SOFTWARE,
        now=IAT + 61,
        required=required,
        source="e.json",
    )
    assert explanation.facts.clock_skew_s == 61
    assert explanation.facts.required == required
    assert explanation.notes == (OFFLINE_NOTE, "key class software was given, not proven")
    assert [r.passed for r in explanation.decision.results] == [False, False]
    assert explanation.decision.results[1].reason.endswith(": location.gps")


def test_explain_evidence_with_an_empty_manifest_still_notes_nothing_missing() -> None:
    explanation = explain_evidence(
        Policy(version="v", rules=(SKEW,)), JWS, key_class=KeyClass.TPM2, now=IAT,
        required=frozenset(),
    )  # fmt: skip
    assert explanation.notes == (OFFLINE_NOTE, "key class tpm2 was given, not proven")


def test_explain_evidence_names_its_source() -> None:
    policy = Policy("v", (SKEW,))
    with pytest.raises(EvidenceInputError, match=r"^<evidence>: claims JSON must be an object"):
        explain_evidence(policy, b"[1]", key_class=KeyClass.TPM2)
    with pytest.raises(EvidenceInputError, match=r"^e\.jws: not a compact JWS evidence"):
        explain_evidence(policy, b"x.y", key_class=KeyClass.TPM2, source="e.jws")


def test_explain_evidence_bad_iat_names_the_source() -> None:
    data = json.dumps(_claims(iat="soon")).encode()
    with pytest.raises(EvidenceInputError, match=r"^x\.json: iat: claim iat must be"):
        explain_evidence(Policy("v", (SKEW,)), data, key_class=KeyClass.TPM2, source="x.json")


class PlainRule:
    """A rule that is not a dataclass and has an unsafe-looking attribute."""

    name = "plain"
    mode = RuleMode.ENFORCE
    unsafe_everything = True

    def check(self, facts: PolicyInput) -> RuleResult:
        return RuleResult(self.name, self.mode, True, "ok")


def test_warnings() -> None:
    zone = (zone_glob("Etc/*"),)
    quiet = Policy("v", (RequiredFieldsRule(), TimezoneRule(deny=zone), PlainRule()))
    assert policy_warnings(quiet) == ()
    unsafe_after_plain = Policy(
        "v",
        (PlainRule(), RequiredFieldsRule(), TimezoneRule(deny=zone, unsafe_pass_if_not_sent=True)),
    )
    assert policy_warnings(unsafe_after_plain) == (
        "rule timezone sets unsafe_pass_if_not_sent = true",
    )
    loud = Policy(
        "v",
        (
            RequiredFieldsRule(mode=RuleMode.REPORT),
            TimezoneRule(
                deny=zone, unsafe_allow_unknown_zone=True, unsafe_pass_if_not_sent=True,
                mode=RuleMode.REPORT,
            ),
        ),
    )  # fmt: skip
    assert policy_warnings(loud) == (
        "no rule enforces: every enrolled device with valid evidence is allowed",
        "rule timezone sets unsafe_allow_unknown_zone = true",
        "rule timezone sets unsafe_pass_if_not_sent = true",
    )
    only_key_class = Policy("v", (KeyClassRule(allowed=frozenset({KeyClass.TPM2})),))
    assert policy_warnings(only_key_class) == (
        "no required_fields rule: the manifest's enforce fields are not checked",
    )


def test_render_aligns_rule_names_and_shows_the_token() -> None:
    decision = Decision(
        allow=True,
        results=(
            RuleResult("a", RuleMode.REPORT, True, "fine"),
            RuleResult("required_fields", RuleMode.ENFORCE, True, "all there"),
        ),
        policy_version="2026-11-01",
        token=TokenSettings(ttl_s=60, audience="gw"),
    )
    assert render_decision(decision) == (
        "ALLOW  policy 2026-11-01\n"
        "  PASS  report   a                fine\n"
        "  PASS  enforce  required_fields  all there\n"
        "token: ttl 60 s, audience gw"
    )


def test_render_explanation_in_full() -> None:
    facts = PolicyInput(
        device_id="dev-9",
        key_class=KeyClass.TPM2,
        clock_skew_s=-3,
        signals={FieldId("proxy.env"): [], FieldId("baseurl.env"): []},
        consented=frozenset(),
    )
    text = render_explanation(explain(Policy("v2", (SKEW,)), facts, notes=("first", "second")))
    assert text == (
        "note: first\n"
        "note: second\n"
        "device dev-9, key class tpm2, clock skew -3 s, signals: baseurl.env, proxy.env\n"
        "ALLOW  policy v2\n"
        "  PASS  enforce  clock_skew  clock skew -3 s within 60 s\n"
        "token: ttl 900 s, audience envattest"
    )


def test_render_a_decision_without_results() -> None:
    decision = Decision(False, (), "v", TokenSettings())
    assert render_decision(decision) == "DENY  policy v\ntoken: not issued"
