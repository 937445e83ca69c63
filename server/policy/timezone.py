"""Timezone rule: the system clock's IANA zone against allow and deny globs.

The zone is first made canonical through tzdata (``attest.catalog.zones``), whatever the
agent sent: ``Asia/Calcutta`` is ``Asia/Kolkata``, so an alias cannot pass a deny list written
with the canonical name. Globs match the canonical name only; the loader canonicalizes exact
names in the policy and refuses globs that match no canonical zone. A name tzdata does not
know is refused.

Deny wins over allow. With an ``allow`` list the zone must match one of its patterns; with
only ``deny`` any zone not denied passes. An unknown zone (``timezone.iana`` is null) fails
unless ``unsafe_allow_unknown_zone``: a device that hides its zone would otherwise slip past an
allow list. When ``timezone.utc_offset_minutes`` was sent, it must be the zone's offset at the
evidence's ``iat``; a mismatch is an inconsistency that fails the rule unless
``unsafe_allow_offset_mismatch``. A zone is a setting the user controls; treat this rule as a
signal, not a proof.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from attest.catalog import FieldId
from attest.catalog.zones import tz_database
from server.policy.globs import Glob, first_match, show, zone_glob
from server.policy.model import PolicyInput, RuleMode, RuleResult
from server.policy.signals import not_sent_result, presence

ZONE_FIELD = FieldId("timezone.iana")
OFFSET_FIELD = FieldId("timezone.utc_offset_minutes")
MAX_ZONE = 64


def zone_pattern(pattern: str) -> Glob:
    """A policy's zone glob, checked against tzdata: an exact name becomes its canonical name
    (``Asia/Calcutta`` -> ``Asia/Kolkata``); a glob must match some canonical zone. ValueError
    says what to write instead."""
    glob = zone_glob(pattern)
    database = tz_database()
    if "*" not in pattern:
        by_lower = {n.lower(): database.canonical(n) for n in (*database.zones, *database.links)}
        canonical = by_lower.get(pattern.lower())
        if canonical is None:
            raise ValueError(
                f"{pattern!r} is not a zone in tzdata {database.version}; check the spelling "
                "(as in 'Europe/Berlin')"
            )
        return zone_glob(canonical)
    if not any(glob.matches(zone) for zone in database.zones):
        raise ValueError(
            f"{pattern!r} matches no canonical tzdata zone (zones are matched by canonical "
            "name: 'US/*' is written 'America/*')"
        )
    return glob


def offset_text(minutes: int) -> str:
    """``+05:30`` style."""
    sign = "-" if minutes < 0 else "+"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@dataclass(frozen=True)
class TimezoneRule:
    """``timezone.iana`` must match ``allow`` (when given) and must not match ``deny``."""

    allow: tuple[Glob, ...] = ()
    deny: tuple[Glob, ...] = ()
    unsafe_allow_unknown_zone: bool = False
    unsafe_allow_offset_mismatch: bool = False
    unsafe_pass_if_not_sent: bool = False
    mode: RuleMode = RuleMode.ENFORCE
    name: str = "timezone"

    def check(self, facts: PolicyInput) -> RuleResult:
        """Pass when the canonical zone is allowed, not denied, and agrees with the offset."""
        found = presence(facts, (ZONE_FIELD,))
        if found.missing:
            return not_sent_result(
                self.name,
                self.mode,
                found,
                unsafe_pass_if_not_sent=self.unsafe_pass_if_not_sent,
            )
        reported = facts.signals[ZONE_FIELD]
        if reported is None:
            if self.unsafe_allow_unknown_zone:
                return self._result(True, "zone unknown; passed (unsafe_allow_unknown_zone)")
            return self._result(False, "zone unknown (timezone.iana is null)")
        if not isinstance(reported, str) or not reported or len(reported) > MAX_ZONE:
            return self._result(False, f"field {ZONE_FIELD} is not a zone name")
        database = tz_database()
        zone = database.canonical(reported)
        if zone is None:
            return self._result(
                False,
                f"zone {reported!r} is not in tzdata {database.version}; if it is a new zone, "
                "update the verifier's tzdata package",
            )
        named = zone if zone == reported else f"{zone} (sent as {reported})"
        inconsistency = self._offset_inconsistency(facts, zone)
        denied = first_match(self.deny, zone)
        if denied is not None:
            return self._result(False, f"zone {named} matches deny {denied.pattern!r}")
        if self.allow:
            allowed = first_match(self.allow, zone)
            if allowed is None:
                return self._result(
                    False, f"zone {named} matches none of allow: {show(self.allow)}"
                )
            verdict = f"zone {named} matches allow {allowed.pattern!r}"
        else:
            verdict = f"zone {named} matches none of deny: {show(self.deny)}"
        if inconsistency is not None:
            if not self.unsafe_allow_offset_mismatch:
                return self._result(False, f"{verdict}, but {inconsistency}")
            return self._result(True, f"{verdict}; {inconsistency} (unsafe_allow_offset_mismatch)")
        return self._result(True, verdict)

    @staticmethod
    def _offset_inconsistency(facts: PolicyInput, zone: str) -> str | None:
        """Why the reported offset is not ``zone``'s offset at ``iat``; None when it is, or
        when the offset or ``iat`` is not known."""
        reported = facts.signals.get(OFFSET_FIELD)
        if facts.iat is None or isinstance(reported, bool) or not isinstance(reported, int):
            return None
        at = datetime.fromtimestamp(facts.iat, UTC)
        expected = tz_database().utc_offset_minutes(zone, at)
        if expected is None or expected == reported:
            return None
        return (
            f"the reported offset {offset_text(reported)} is not {zone}'s "
            f"{offset_text(expected)} at iat {at.isoformat()}: the clock and the zone disagree"
        )

    def _result(self, passed: bool, reason: str) -> RuleResult:
        return RuleResult(self.name, self.mode, passed, reason)


__all__ = ["OFFSET_FIELD", "ZONE_FIELD", "TimezoneRule", "offset_text", "zone_pattern"]
