"""The built-in rule families used by the default policy."""

from __future__ import annotations

from dataclasses import dataclass

from attest.catalog import FieldId
from attest.keys import KeyClass
from server.policy.model import PolicyInput, RuleMode, RuleResult


@dataclass(frozen=True)
class KeyClassRule:
    """The device key's proven class must be one of ``allowed``."""

    allowed: frozenset[KeyClass]
    mode: RuleMode = RuleMode.ENFORCE
    name: str = "key_class"

    def check(self, facts: PolicyInput) -> RuleResult:
        """Pass when the enrolled key class is allowed."""
        ok = facts.key_class in self.allowed
        wanted = ", ".join(sorted(k.value for k in self.allowed))
        reason = (
            f"key class {facts.key_class.value} is allowed"
            if ok
            else f"key class {facts.key_class.value} is not allowed (policy requires {wanted})"
        )
        return RuleResult(self.name, self.mode, ok, reason)


@dataclass(frozen=True)
class ClockSkewRule:
    """The agent's clock (its ``iat``) must be within ``max_skew_s`` of the server's."""

    max_skew_s: int
    mode: RuleMode = RuleMode.ENFORCE
    name: str = "clock_skew"

    def check(self, facts: PolicyInput) -> RuleResult:
        """Pass when |server time - iat| is within the bound."""
        skew = abs(facts.clock_skew_s)
        ok = skew <= self.max_skew_s
        reason = f"clock skew {facts.clock_skew_s:+d} s " + (
            f"within {self.max_skew_s} s" if ok else f"exceeds the {self.max_skew_s} s bound"
        )
        return RuleResult(self.name, self.mode, ok, reason)


@dataclass(frozen=True)
class RequiredFieldsRule:
    """Every field the manifest marks ``enforce``, plus ``fields``, must be consented and sent."""

    mode: RuleMode = RuleMode.ENFORCE
    name: str = "required_fields"
    fields: frozenset[FieldId] = frozenset()

    def check(self, facts: PolicyInput) -> RuleResult:
        """Pass when no required field is missing."""
        missing = sorted((facts.required | self.fields) - set(facts.signals))
        if missing:
            return RuleResult(
                self.name,
                self.mode,
                False,
                f"required fields not consented or not sent: {', '.join(missing)}",
            )
        return RuleResult(self.name, self.mode, True, "all required fields present")
