"""Offline explanation: evaluate a policy against saved evidence and render the decision.

For ``envattest-server policy explain EVIDENCE_FILE``. The file is the compact JWS or its
decoded claims JSON. Offline nothing is verified: not the signature, the nonce, the enrollment
or consent against the manifest. The key class and the manifest's required fields come from
the caller, and every rendering says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass

from attest.catalog import CATALOG, FieldId
from attest.errors import AttestError
from attest.evidence import parse_evidence
from attest.keys import KeyClass
from server.policy.errors import EvidenceInputError
from server.policy.model import Decision, Policy, PolicyInput, RuleMode
from server.policy.rules import RequiredFieldsRule

OFFLINE_NOTE = (
    "offline: the evidence signature was NOT checked, nor its nonce, enrollment or consent"
)


@dataclass(frozen=True)
class Explanation:
    """A decision with the facts it was made on and what the caller should know about them."""

    decision: Decision
    facts: PolicyInput
    notes: tuple[str, ...] = ()


def explain(policy: Policy, facts: PolicyInput, *, notes: tuple[str, ...] = ()) -> Explanation:
    """Evaluate ``policy`` on ``facts``; the decision lists every rule with its reason."""
    return Explanation(policy.evaluate(facts), facts, notes)


def read_evidence_claims(data: bytes, *, source: str) -> Mapping[str, object]:
    """Claims from a compact JWS (signature NOT checked) or from claims JSON."""
    text = data.strip()
    if text[:1] in (b"{", b"["):
        try:
            claims = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EvidenceInputError(
                f"not valid JSON ({exc})",
                source=source,
                fix="Give the compact JWS or the claims JSON as the agent wrote it.",
            ) from None
        if not isinstance(claims, dict):
            raise EvidenceInputError(
                "claims JSON must be an object", source=source, fix="Give the claims object."
            )
        return claims
    try:
        return parse_evidence(text).claims.to_json()
    except AttestError as exc:
        raise EvidenceInputError(
            f"not a compact JWS evidence ({exc})",
            source=source,
            fix="Give the evidence exactly as sent (header.payload.signature) or its claims JSON.",
        ) from None


def _claim_error(name: str, what: str, source: str) -> EvidenceInputError:
    return EvidenceInputError(
        f"claim {name} must be {what}",
        source=source,
        fix="Give evidence produced by the envattest agent.",
        key=name,
    )


def facts_from_evidence_claims(
    claims_json: Mapping[str, object],
    *,
    key_class: KeyClass,
    now: int | None,
    required: frozenset[FieldId] = frozenset(),
    source: str = "<claims>",
) -> PolicyInput:
    """PolicyInput from evidence claims; ``clock_skew_s`` is ``now - iat``, as the verifier,
    or 0 when ``now`` is None (evaluated as of ``iat``)."""
    sub = claims_json.get("sub")
    if not isinstance(sub, str) or not sub:
        raise _claim_error("sub", "a non-empty string", source)
    iat = claims_json.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int):
        raise _claim_error("iat", "an integer", source)
    consent = claims_json.get("consent")
    granted = consent.get("fields") if isinstance(consent, dict) else None
    if not isinstance(granted, list) or not all(isinstance(f, str) for f in granted):
        raise _claim_error("consent.fields", "a list of field ids", source)
    signals = claims_json.get("signals")
    if not isinstance(signals, dict):
        raise _claim_error("signals", "an object", source)
    unknown = sorted(str(k) for k in signals if k not in CATALOG)
    if unknown:
        raise _claim_error(f"signals.{unknown[0]}", "a catalog field", source)
    return PolicyInput(
        device_id=sub,
        key_class=key_class,
        clock_skew_s=0 if now is None else now - iat,
        signals={FieldId(k): v for k, v in signals.items()},
        consented=frozenset(FieldId(f) for f in granted),
        required=required,
        iat=iat,
    )


def explain_evidence(
    policy: Policy,
    data: bytes,
    *,
    key_class: KeyClass,
    now: int | None = None,
    required: frozenset[FieldId] | None = None,
    source: str = "<evidence>",
) -> Explanation:
    """Read evidence bytes and explain the decision; ``now=None`` evaluates as of its ``iat``."""
    claims = read_evidence_claims(data, source=source)
    facts = facts_from_evidence_claims(
        claims, key_class=key_class, now=now, required=required or frozenset(), source=source
    )
    notes = [OFFLINE_NOTE, f"key class {key_class.value} was given, not proven"]
    if now is None:
        notes.append("clock skew evaluated as of the evidence iat (pass now to check it)")
    if required is None:
        notes.append("no manifest given: its enforce fields were not required")
    return explain(policy, facts, notes=tuple(notes))


def policy_warnings(policy: Policy) -> tuple[str, ...]:
    """What a reviewer should know before running ``policy``: report-only, unsafe options."""
    warnings: list[str] = []
    if not any(rule.mode is RuleMode.ENFORCE for rule in policy.rules):
        warnings.append("no rule enforces: every enrolled device with valid evidence is allowed")
    if not any(isinstance(rule, RequiredFieldsRule) for rule in policy.rules):
        warnings.append("no required_fields rule: the manifest's enforce fields are not checked")
    for rule in policy.rules:
        if not is_dataclass(rule):
            continue
        for option in fields(rule):
            if option.name.startswith("unsafe_") and getattr(rule, option.name) is True:
                warnings.append(f"rule {rule.name} sets {option.name} = true")
    return tuple(warnings)


def render_decision(decision: Decision) -> str:
    """Text for a person: the verdict, one line per rule (PASS/FAIL, mode, reason), the token."""
    width = max((len(r.rule) for r in decision.results), default=0)
    lines = [f"{'ALLOW' if decision.allow else 'DENY'}  policy {decision.policy_version}"]
    for result in decision.results:
        verdict = "PASS" if result.passed else "FAIL"
        lines.append(
            f"  {verdict}  {result.mode.value:<7}  {result.rule:<{width}}  {result.reason}"
        )
    if decision.allow:
        token = decision.token
        lines.append(f"token: ttl {token.ttl_s} s, audience {token.audience}")
    else:
        lines.append("token: not issued")
    return "\n".join(lines)


def render_explanation(explanation: Explanation) -> str:
    """The notes, the facts' identity, then ``render_decision``."""
    facts = explanation.facts
    head = [f"note: {note}" for note in explanation.notes]
    head.append(
        f"device {facts.device_id}, key class {facts.key_class.value}, "
        f"clock skew {facts.clock_skew_s:+d} s, signals: {', '.join(sorted(facts.signals))}"
    )
    return "\n".join([*head, render_decision(explanation.decision)])


__all__ = [
    "OFFLINE_NOTE",
    "Explanation",
    "explain",
    "explain_evidence",
    "facts_from_evidence_claims",
    "policy_warnings",
    "read_evidence_claims",
    "render_decision",
    "render_explanation",
]
