"""Offline explain: evidence file (JWS or claims JSON) -> facts -> decision -> text."""

from __future__ import annotations

import json

import pytest

from attest.catalog import FieldId
from attest.keys import KeyClass
from server.policy import (
    Decision,
    EvidenceInputError,
    Policy,
    RuleMode,
    RuleResult,
    TokenSettings,
    explain_evidence,
    facts_from_evidence_claims,
    load_policy,
    read_evidence_claims,
    render_decision,
    render_explanation,
)
from server.policy.explain import OFFLINE_NOTE
from tests.server.policy.conftest import EXAMPLES, VECTORS

JWS = (VECTORS / "evidence-relay.jws").read_bytes()
CLAIMS = (VECTORS / "evidence-relay.claims.json").read_bytes()
IAT = 1_790_000_100


def test_jws_and_claims_json_give_the_same_claims() -> None:
    assert read_evidence_claims(JWS, source="e") == json.loads(CLAIMS)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", r"e: not valid JSON"),
        (b"[1, 2]", r"claims JSON must be an object"),
        (b"abc.def", r"not a compact JWS evidence"),
        (JWS.replace(b".", b"x", 1), r"not a compact JWS evidence"),
    ],
)
def test_unreadable_evidence(data: bytes, message: str) -> None:
    with pytest.raises(EvidenceInputError, match=message):
        read_evidence_claims(data, source="e")


def test_facts_from_claims() -> None:
    claims = json.loads(CLAIMS)
    facts = facts_from_evidence_claims(
        claims, key_class=KeyClass.SOFTWARE, now=IAT + 30, required=frozenset()
    )
    assert facts.device_id == "dev-relay-1"
    assert facts.clock_skew_s == 30, "now - iat, as the verifier computes it"
    assert facts.signals[FieldId("timezone.iana")] == "Europe/Berlin"
    assert FieldId("proxy.tunnels") in facts.consented


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"sub": ""}, "sub"),
        ({"iat": True}, "iat"),
        ({"consent": {"fields": "all"}}, "consent.fields"),
        ({"signals": []}, "signals"),
        ({"signals": {"location.gps": 1}}, "signals.location.gps"),
    ],
)
def test_bad_claims(change: dict[str, object], key: str) -> None:
    claims = {**json.loads(CLAIMS), **change}
    with pytest.raises(EvidenceInputError, match=rf"claim {key} must be") as caught:
        facts_from_evidence_claims(claims, key_class=KeyClass.TPM2, now=IAT, source="e.json")
    assert caught.value.key == key


def test_explain_relay_evidence_with_relay_policy() -> None:
    policy = load_policy(EXAMPLES / "policy-relay-detection.toml")
    explanation = explain_evidence(policy, JWS, key_class=KeyClass.SOFTWARE, source="e.jws")
    decision = explanation.decision
    assert not decision.allow
    fired = {r.rule: r for r in decision.results if not r.passed}
    assert set(fired) == {"base_url", "proxy", "tunnels", "timezone"}
    assert fired["tunnels"].mode is RuleMode.REPORT
    # Berlin is at UTC+02:00 on the evidence's iat (September); the vector says +60.
    assert "is not Europe/Berlin's UTC+02:00 at iat" in fired["timezone"].reason
    assert "env:ANTHROPIC_BASE_URL -> 127.0.0.1 (localhost)" in fired["base_url"].reason
    assert OFFLINE_NOTE in explanation.notes
    text = render_explanation(explanation)
    assert "signature was NOT checked" in text
    assert "key class software was given, not proven" in text
    assert "clock skew evaluated as of the evidence iat" in text
    assert "no manifest given" in text
    assert "DENY  policy example-relay-detection-1" in text
    assert "token: not issued" in text


def test_explain_with_now_checks_skew() -> None:
    policy = load_policy(EXAMPLES / "policy-strict-hardware.toml")
    explanation = explain_evidence(
        policy,
        CLAIMS,
        key_class=KeyClass.TPM2,
        now=IAT + 3600,
        required=frozenset({FieldId("timezone.iana")}),
    )
    results = {r.rule: r for r in explanation.decision.results}
    assert not results["clock_skew"].passed
    assert "+3600 s exceeds the 120 s bound" in results["clock_skew"].reason
    assert not any("iat" in n or "manifest" in n for n in explanation.notes)


def test_render_decision_one_line_per_rule() -> None:
    decision = Decision(
        allow=True,
        results=(
            RuleResult("key_class", RuleMode.ENFORCE, True, "key class tpm2 is allowed"),
            RuleResult("timezone", RuleMode.REPORT, False, "zone Asia/Tokyo matches none"),
        ),
        policy_version="v7",
        token=TokenSettings(ttl_s=600, audience="llm-gateway"),
    )
    assert render_decision(decision).splitlines() == [
        "ALLOW  policy v7",
        "  PASS  enforce  key_class  key class tpm2 is allowed",
        "  FAIL  report   timezone   zone Asia/Tokyo matches none",
        "token: ttl 600 s, audience llm-gateway",
    ]


def test_render_empty_policy() -> None:
    decision = Policy(version="v0", rules=()).evaluate(
        facts_from_evidence_claims(json.loads(CLAIMS), key_class=KeyClass.TPM2, now=IAT)
    )
    assert render_decision(decision).splitlines() == [
        "DENY  policy v0",
        "  FAIL  enforce  policy  policy has no rules",
        "token: not issued",
    ]
