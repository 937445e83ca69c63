"""Policy core types: facts in, rules, a decision out; an empty policy fails closed.

``Policy.evaluate`` runs every rule and returns a ``Decision`` listing every rule that fired.
A ``report`` rule never denies; an ``enforce`` rule that fails denies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from attest.catalog import FieldId
from attest.keys import KeyClass


class RuleMode(StrEnum):
    """``enforce`` denies on failure; ``report`` only records."""

    ENFORCE = "enforce"
    REPORT = "report"


@dataclass(frozen=True)
class PolicyInput:
    """What a policy sees: verified facts about one attestation."""

    device_id: str
    key_class: KeyClass
    clock_skew_s: int
    signals: Mapping[FieldId, object]
    consented: frozenset[FieldId]
    required: frozenset[FieldId] = frozenset()
    iat: int | None = None
    """The evidence's ``iat`` (seconds): the instant signals such as the UTC offset describe."""


@dataclass(frozen=True)
class RuleResult:
    """One rule's verdict; ``passed=False`` means the rule fired."""

    rule: str
    mode: RuleMode
    passed: bool
    reason: str


class Rule(Protocol):
    """A policy rule: a name, a mode, and a check."""

    @property
    def name(self) -> str:
        """Stable rule name, shown in decisions and the audit log."""
        ...

    @property
    def mode(self) -> RuleMode:
        """``enforce`` or ``report``."""
        ...

    def check(self, facts: PolicyInput) -> RuleResult:
        """Evaluate against one attestation."""
        ...


class TokenBinding(StrEnum):
    """``dpop``: every use needs a proof by the device key (RFC 9449); ``bearer``: none."""

    DPOP = "dpop"
    BEARER = "bearer"


@dataclass(frozen=True)
class TokenSettings:
    """Access-token lifetime, audience and binding granted by an allow decision."""

    ttl_s: int = 900
    audience: str = "envattest"
    binding: TokenBinding = TokenBinding.BEARER


@dataclass(frozen=True)
class Decision:
    """Allow or deny, with every rule result; ``reasons`` lists the rules that fired."""

    allow: bool
    results: tuple[RuleResult, ...]
    policy_version: str
    token: TokenSettings

    @property
    def reasons(self) -> list[str]:
        """Human-readable lines for every rule that fired, enforce first."""
        fired = [r for r in self.results if not r.passed]
        fired.sort(key=lambda r: r.mode is not RuleMode.ENFORCE)
        return [f"{r.rule} ({r.mode.value}): {r.reason}" for r in fired]


@dataclass(frozen=True)
class Policy:
    """An ordered set of rules plus token settings."""

    version: str
    rules: tuple[Rule, ...]
    token: TokenSettings = field(default_factory=TokenSettings)

    def evaluate(self, facts: PolicyInput) -> Decision:
        """Run every rule; deny if any enforce rule fails or if there are no rules at all."""
        results = tuple(rule.check(facts) for rule in self.rules)
        if not results:
            empty = RuleResult("policy", RuleMode.ENFORCE, False, "policy has no rules")
            return Decision(False, (empty,), self.version, self.token)
        allow = all(r.passed for r in results if r.mode is RuleMode.ENFORCE)
        return Decision(allow, results, self.version, self.token)
