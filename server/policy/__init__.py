"""Access policy: small typed rules, each ``enforce`` or ``report``; an empty policy fails closed.

``Policy.evaluate`` runs every rule and returns a ``Decision`` listing every rule that fired.
A ``report`` rule never denies; an ``enforce`` rule that fails denies. ``load_policy`` reads
the organisation's TOML policy file (format: ``server.policy.loader``); ``explain_evidence``
and ``render_decision`` evaluate and show a decision offline.
"""

from __future__ import annotations

from server.policy.errors import (
    EvidenceInputError,
    PolicyError,
    PolicySchemaError,
    PolicySyntaxError,
)
from server.policy.explain import (
    Explanation,
    explain,
    explain_evidence,
    facts_from_evidence_claims,
    policy_warnings,
    read_evidence_claims,
    render_decision,
    render_explanation,
)
from server.policy.loader import load_policy, parse_policy
from server.policy.model import (
    Decision,
    Policy,
    PolicyInput,
    Rule,
    RuleMode,
    RuleResult,
    TokenSettings,
)

__all__ = [
    "Decision",
    "EvidenceInputError",
    "Explanation",
    "Policy",
    "PolicyError",
    "PolicyInput",
    "PolicySchemaError",
    "PolicySyntaxError",
    "Rule",
    "RuleMode",
    "RuleResult",
    "TokenSettings",
    "explain",
    "explain_evidence",
    "facts_from_evidence_claims",
    "load_policy",
    "parse_policy",
    "policy_warnings",
    "read_evidence_claims",
    "render_decision",
    "render_explanation",
]
