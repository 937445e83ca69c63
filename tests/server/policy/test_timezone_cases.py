"""The timezone rule case by case: deny before allow, name bounds, the offset at ``iat``, each
unsafe switch, and the exact reason; the policy's zone names and the offset text."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from attest.catalog.zones import tz_database
from attest.keys import KeyClass
from server.policy import PolicyInput, RuleMode
from server.policy.globs import zone_glob
from server.policy.timezone import TimezoneRule, offset_text, zone_pattern

SUMMER = int(datetime(2026, 7, 1, 12, tzinfo=UTC).timestamp())
AT = "at iat 2026-07-01T12:00:00+00:00: the clock and the zone disagree"
PARIS = (zone_glob("Europe/Paris"),)
EUROPE = (zone_glob("Europe/*"),)


def _zone(zone: object, offset: object = None, *, iat: int | None = SUMMER) -> PolicyInput:
    signals: dict[str, object] = {"timezone.iana": zone}
    if offset is not None:
        signals["timezone.utc_offset_minutes"] = offset
    return PolicyInput(
        device_id="dev-1",
        key_class=KeyClass.TPM2,
        clock_skew_s=0,
        signals=signals,  # type: ignore[arg-type]
        consented=frozenset(signals),  # type: ignore[arg-type]
        iat=iat,
    )


CASES: list[tuple[str, TimezoneRule, PolicyInput, bool, str]] = [
    (
        "deny-wins-over-allow",
        TimezoneRule(allow=(zone_glob("Asia/*"),), deny=(zone_glob("Asia/Kolkata"),)),
        _zone("Asia/Kolkata"),
        False,
        "zone Asia/Kolkata matches deny 'Asia/Kolkata'",
    ),
    (
        "deny-only-offset-agrees",
        TimezoneRule(deny=PARIS),
        _zone("Asia/Kolkata", 330),
        True,
        "zone Asia/Kolkata matches none of deny: Europe/Paris",
    ),
    (
        "deny-only-offset-disagrees",
        TimezoneRule(deny=PARIS),
        _zone("Asia/Kolkata", 300),
        False,
        "zone Asia/Kolkata matches none of deny: Europe/Paris, but the reported offset "
        f"UTC+05:00 is not Asia/Kolkata's UTC+05:30 {AT}",
    ),
    (
        "negative-half-hour-agrees",
        TimezoneRule(deny=PARIS),
        _zone("America/St_Johns", -150),
        True,
        "zone America/St_Johns matches none of deny: Europe/Paris",
    ),
    (
        "negative-half-hour-disagrees",
        TimezoneRule(deny=PARIS),
        _zone("America/St_Johns", -210),
        False,
        "zone America/St_Johns matches none of deny: Europe/Paris, but the reported offset "
        f"UTC-03:30 is not America/St_Johns's UTC-02:30 {AT}",
    ),
    (
        "offset-true-is-not-a-number",
        TimezoneRule(deny=PARIS),
        _zone("America/St_Johns", True),
        True,
        "zone America/St_Johns matches none of deny: Europe/Paris",
    ),
    (
        "offset-text-is-not-a-number",
        TimezoneRule(allow=EUROPE),
        _zone("Europe/Berlin", "0"),
        True,
        "zone Europe/Berlin matches allow 'Europe/*'",
    ),
    (
        "name-of-64",
        TimezoneRule(deny=PARIS),
        _zone("A" * 64),
        False,
        f"zone {'A' * 64!r} is not in tzdata {tz_database().version}; if it is a new zone, "
        "update the verifier's tzdata package",
    ),
    ("name-of-65", TimezoneRule(deny=PARIS), _zone("A" * 65), False, ""),
    ("name-a-list", TimezoneRule(deny=PARIS), _zone(["Europe/Paris"]), False, ""),
    (
        "unsafe-switches-do-not-open-deny",
        TimezoneRule(deny=PARIS, unsafe_allow_offset_mismatch=True, unsafe_allow_unknown_zone=True),
        _zone("Europe/Paris", 0),
        False,
        "zone Europe/Paris matches deny 'Europe/Paris'",
    ),
    (
        "offset-mismatch-allowed",
        TimezoneRule(allow=EUROPE, unsafe_allow_offset_mismatch=True),
        _zone("Europe/Berlin", 0),
        True,
        "zone Europe/Berlin matches allow 'Europe/*'; the reported offset UTC+00:00 is not "
        f"Europe/Berlin's UTC+02:00 {AT} (unsafe_allow_offset_mismatch)",
    ),
    (
        "offset-mismatch-allowed-not-allow-list",
        TimezoneRule(allow=EUROPE, unsafe_allow_offset_mismatch=True),
        _zone("Asia/Tokyo", 0),
        False,
        "zone Asia/Tokyo matches none of allow: Europe/*",
    ),
    (
        "unknown-zone-despite-absence-switch",
        TimezoneRule(allow=EUROPE, unsafe_pass_if_not_sent=True),
        _zone(None),
        False,
        "zone unknown (timezone.iana is null)",
    ),
    (
        "unknown-zone-allowed",
        TimezoneRule(allow=EUROPE, unsafe_allow_unknown_zone=True),
        _zone(None),
        True,
        "zone unknown; passed (unsafe_allow_unknown_zone)",
    ),
    (
        "alias-allowed-named-twice",
        TimezoneRule(allow=(zone_glob("Asia/Kolkata"),)),
        _zone("Asia/Calcutta", 330),
        True,
        "zone Asia/Kolkata (sent as Asia/Calcutta) matches allow 'Asia/Kolkata'",
    ),
]


@pytest.mark.parametrize("mode", [RuleMode.ENFORCE, RuleMode.REPORT])
@pytest.mark.parametrize(
    ("rule", "facts", "passed", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_decision_and_reason(
    rule: TimezoneRule, facts: PolicyInput, passed: bool, reason: str, mode: RuleMode
) -> None:
    result = replace(rule, mode=mode).check(facts)
    assert (result.rule, result.mode, result.passed) == ("timezone", mode, passed)
    assert result.reason == (reason or "field timezone.iana is not a zone name")


def test_the_offset_is_checked_at_iat_not_now() -> None:
    winter = int(datetime(2026, 1, 15, 12, tzinfo=UTC).timestamp())
    rule = TimezoneRule(allow=EUROPE)
    assert rule.check(_zone("Europe/Berlin", 60, iat=winter)).passed
    assert not rule.check(_zone("Europe/Berlin", 120, iat=winter)).passed
    assert rule.check(_zone("Europe/Berlin", 0, iat=None)).passed


@pytest.mark.parametrize(
    ("minutes", "text"),
    [(0, "UTC+00:00"), (330, "UTC+05:30"), (-330, "UTC-05:30"), (-59, "UTC-00:59"),
     (840, "UTC+14:00"), (-600, "UTC-10:00")],
)  # fmt: skip
def test_offset_text(minutes: int, text: str) -> None:
    assert offset_text(minutes) == text


@pytest.mark.parametrize(
    ("written", "canonical"),
    [("asia/calcutta", "Asia/Kolkata"), ("UTC", "Etc/UTC"), ("utc", "Etc/UTC"),
     ("EUROPE/BERLIN", "Europe/Berlin"), ("Etc/UTC", "Etc/UTC"), ("europe/*", "europe/*")],
)  # fmt: skip
def test_policy_zone_names_become_canonical(written: str, canonical: str) -> None:
    glob = zone_pattern(written)
    assert glob.pattern == canonical
    assert glob.matches(canonical)


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("Mars/Olympus", r"^'Mars/Olympus' is not a zone in tzdata \S+; check the spelling "
         r"\(as in 'Europe/Berlin'\)$"),
        ("US/*", r"^'US/\*' matches no canonical tzdata zone \(zones are matched by canonical "
         r"name: 'US/\*' is written 'America/\*'\)$"),
        ("Europe", r"is not a zone in tzdata"),
        ("Europe Berlin", r"is not an IANA zone glob"),
    ],
)  # fmt: skip
def test_policy_zone_names_refused(written: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        zone_pattern(written)


@pytest.mark.parametrize("mode", [RuleMode.ENFORCE, RuleMode.REPORT])
def test_not_sent_names_the_rule(mode: RuleMode) -> None:
    facts = replace(_zone("Etc/UTC"), signals={}, consented=frozenset())
    result = TimezoneRule(deny=PARIS, mode=mode).check(facts)
    assert (result.rule, result.mode, result.passed) == ("timezone", mode, False)
    assert result.reason == "field timezone.iana was not sent (not consented)"
