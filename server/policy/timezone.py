"""Timezone rule: the system clock's IANA zone against allow and deny globs.

Deny wins over allow. With an ``allow`` list the zone must match one of its patterns; with
only ``deny`` any zone not denied passes. An unknown zone (``timezone.iana`` is null) fails
unless ``unsafe_allow_unknown_zone``: a device that hides its zone would otherwise slip past an
allow list. A zone is a setting the user controls; treat this rule as a signal, not a proof.
"""

from __future__ import annotations

from dataclasses import dataclass

from attest.catalog import FieldId
from server.policy.globs import Glob, first_match, show
from server.policy.model import PolicyInput, RuleMode, RuleResult
from server.policy.signals import not_sent_result, presence

ZONE_FIELD = FieldId("timezone.iana")
MAX_ZONE = 64


@dataclass(frozen=True)
class TimezoneRule:
    """``timezone.iana`` must match ``allow`` (when given) and must not match ``deny``."""

    allow: tuple[Glob, ...] = ()
    deny: tuple[Glob, ...] = ()
    unsafe_allow_unknown_zone: bool = False
    unsafe_pass_if_not_sent: bool = False
    mode: RuleMode = RuleMode.ENFORCE
    name: str = "timezone"

    def check(self, facts: PolicyInput) -> RuleResult:
        """Pass when the zone is allowed and not denied."""
        found = presence(facts, (ZONE_FIELD,))
        if found.missing:
            return not_sent_result(
                self.name,
                self.mode,
                found,
                unsafe_pass_if_not_sent=self.unsafe_pass_if_not_sent,
            )
        zone = facts.signals[ZONE_FIELD]
        if zone is None:
            if self.unsafe_allow_unknown_zone:
                return self._result(True, "zone unknown; passed (unsafe_allow_unknown_zone)")
            return self._result(False, "zone unknown (timezone.iana is null)")
        if not isinstance(zone, str) or not zone or len(zone) > MAX_ZONE:
            return self._result(False, f"field {ZONE_FIELD} is not a zone name")
        denied = first_match(self.deny, zone)
        if denied is not None:
            return self._result(False, f"zone {zone} matches deny {denied.pattern!r}")
        if self.allow:
            allowed = first_match(self.allow, zone)
            if allowed is None:
                return self._result(False, f"zone {zone} matches none of allow: {show(self.allow)}")
            return self._result(True, f"zone {zone} matches allow {allowed.pattern!r}")
        return self._result(True, f"zone {zone} matches none of deny: {show(self.deny)}")

    def _result(self, passed: bool, reason: str) -> RuleResult:
        return RuleResult(self.name, self.mode, passed, reason)


__all__ = ["ZONE_FIELD", "TimezoneRule"]
