"""Reading signal values for rules: absence made explicit, odd shapes never crash a rule.

The server validates signals against ``attest.catalog.values`` before policy runs; these
readers check again so that a rule given a bad value fails with a reason instead of raising.
A field that was not sent is reported as such: "field X was not sent (not consented)", or
"was consented but not sent" when consent covered it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import get_args

from attest.catalog import FieldId
from attest.catalog.values import Classification
from server.policy.model import PolicyInput, RuleMode, RuleResult

CLASSIFICATIONS: frozenset[str] = frozenset(get_args(Classification))
MAX_LISTED = 5


class MalformedSignalError(ValueError):
    """A signal value does not have its catalog shape; the message names the field."""


@dataclass(frozen=True)
class Presence:
    """Which of a rule's fields were sent, and a reason naming those that were not."""

    sent: tuple[FieldId, ...]
    missing: tuple[FieldId, ...]
    reason: str


def presence(facts: PolicyInput, fields: Iterable[FieldId]) -> Presence:
    """Split ``fields`` into sent and not sent, with a reason for the ones not sent."""
    sent: list[FieldId] = []
    missing: list[FieldId] = []
    notes: list[str] = []
    for field_id in fields:
        if field_id in facts.signals:
            sent.append(field_id)
        elif field_id in facts.consented:
            missing.append(field_id)
            notes.append(f"field {field_id} was consented but not sent")
        else:
            missing.append(field_id)
            notes.append(f"field {field_id} was not sent (not consented)")
    reason = "; ".join(notes)
    return Presence(tuple(sent), tuple(missing), reason)


def not_sent_result(
    name: str, mode: RuleMode, found: Presence, *, unsafe_pass_if_not_sent: bool
) -> RuleResult:
    """The result when some of a rule's fields were not sent: fail, unless the rule opts out."""
    if unsafe_pass_if_not_sent:
        return RuleResult(name, mode, True, f"{found.reason}; passed (unsafe_pass_if_not_sent)")
    return RuleResult(name, mode, False, found.reason)


@dataclass(frozen=True)
class HostEntry:
    """One proxy endpoint or base URL, reduced to what host rules look at."""

    field: FieldId
    source: str
    host: str
    classification: str | None = None

    def describe(self) -> str:
        """``source -> host`` plus the classification when there is one."""
        tail = f" ({self.classification})" if self.classification else ""
        return f"{self.source} -> {self.host}{tail}"


@dataclass(frozen=True)
class TunnelEntry:
    """One tunnel interface."""

    name: str
    kind: str


def _entries(facts: PolicyInput, field_id: FieldId) -> list[dict[str, object]]:
    value = facts.signals[field_id]
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise MalformedSignalError(f"field {field_id} is not a list of objects")
    return value


def _text(entry: dict[str, object], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value or len(value) > 253:
        raise MalformedSignalError(f"{where}.{key} is not a non-empty string")
    return value


def host_entries(
    facts: PolicyInput, fields: Iterable[FieldId], *, classified: bool
) -> tuple[HostEntry, ...]:
    """Every endpoint in ``fields``; ``classified`` requires a base-URL classification."""
    found: list[HostEntry] = []
    for field_id in fields:
        for index, entry in enumerate(_entries(facts, field_id)):
            where = f"{field_id}[{index}]"
            classification = None
            if classified:
                classification = _text(entry, "classification", where)
                if classification not in CLASSIFICATIONS:
                    raise MalformedSignalError(
                        f"{where}.classification {classification!r} is not one of "
                        + ", ".join(sorted(CLASSIFICATIONS))
                    )
            found.append(
                HostEntry(
                    field=field_id,
                    source=_text(entry, "source", where),
                    host=_text(entry, "host", where),
                    classification=classification,
                )
            )
    return tuple(found)


def tunnel_entries(facts: PolicyInput, field_id: FieldId) -> tuple[TunnelEntry, ...]:
    """Every tunnel interface in ``field_id``."""
    return tuple(
        TunnelEntry(
            name=_text(entry, "name", f"{field_id}[{i}]"),
            kind=_text(entry, "kind", f"{field_id}[{i}]"),
        )
        for i, entry in enumerate(_entries(facts, field_id))
    )


def listing(items: Iterable[str]) -> str:
    """At most ``MAX_LISTED`` items, then how many more; keeps reasons and audit lines short."""
    items = list(items)
    head = "; ".join(items[:MAX_LISTED])
    more = len(items) - MAX_LISTED
    return head + (f"; and {more} more" if more > 0 else "")


__all__ = [
    "CLASSIFICATIONS",
    "HostEntry",
    "MalformedSignalError",
    "Presence",
    "TunnelEntry",
    "host_entries",
    "listing",
    "not_sent_result",
    "presence",
    "tunnel_entries",
]


@dataclass(frozen=True)
class SentHosts:
    """The endpoints a host rule checks, and a note on fields skipped as not sent."""

    fields: tuple[FieldId, ...]
    entries: tuple[HostEntry, ...]
    skipped: str


def sent_host_entries(
    facts: PolicyInput,
    fields: Iterable[FieldId],
    *,
    name: str,
    mode: RuleMode,
    unsafe_pass_if_not_sent: bool,
    classified: bool,
) -> SentHosts | RuleResult:
    """The shared start of the host rules: a RuleResult if the rule is decided already
    (fields not sent, or a malformed signal), else the endpoints to check."""
    found = presence(facts, fields)
    if found.missing and (not unsafe_pass_if_not_sent or not found.sent):
        return not_sent_result(name, mode, found, unsafe_pass_if_not_sent=unsafe_pass_if_not_sent)
    skipped = f"; {found.reason}, skipped (unsafe_pass_if_not_sent)" if found.missing else ""
    try:
        entries = host_entries(facts, found.sent, classified=classified)
    except MalformedSignalError as exc:
        return RuleResult(name, mode, False, str(exc))
    return SentHosts(found.sent, entries, skipped)
