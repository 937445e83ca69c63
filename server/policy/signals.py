"""Reading signal values for rules: absence made explicit, odd shapes never crash a rule.

The server validates signals against ``attest.catalog.values`` before policy runs; these
readers check again so that a rule given a bad value fails with a reason instead of raising.
A field that was not sent is reported as such: "field X was not sent (not consented)", or
"was consented but not sent" when consent covered it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from attest.catalog import FieldId
from server.policy.model import PolicyInput, RuleMode, RuleResult

MAX_LISTED = 5
UNSAFE_IGNORE = "unsafe_ignore_unreadable_sources"


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
    """One proxy endpoint or base URL, reduced to what host rules look at.

    ``provider`` is set for base URLs. The agent's ``classification`` is never read: the
    base-URL rule derives its own from the policy.
    """

    field: FieldId
    source: str
    host: str
    provider: str | None = None

    def describe(self, classification: str | None = None) -> str:
        """``source -> host``, plus a classification when one is given."""
        tail = f" ({classification})" if classification else ""
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
    facts: PolicyInput, fields: Iterable[FieldId], *, with_provider: bool
) -> tuple[HostEntry, ...]:
    """Every endpoint in ``fields``; ``with_provider`` requires a base URL's provider."""
    found: list[HostEntry] = []
    for field_id in fields:
        for index, entry in enumerate(_entries(facts, field_id)):
            where = f"{field_id}[{index}]"
            found.append(
                HostEntry(
                    field=field_id,
                    source=_text(entry, "source", where),
                    host=_text(entry, "host", where),
                    provider=_text(entry, "provider", where) if with_provider else None,
                )
            )
    return tuple(found)


def unreadable_sources(
    facts: PolicyInput,
    errors_field: FieldId,
    fields: Iterable[FieldId],
    *,
    rule: str,
    unsafe_ignore: bool,
) -> str | None:
    """Why ``rule`` fails when a source feeding ``fields`` could not be read, or when
    ``errors_field`` (which would say so) was not sent; None when all is readable.

    Fail closed: a value the agent could not parse is exactly where a relay would hide.
    """
    if unsafe_ignore:
        return None
    fix = f"or set {UNSAFE_IGNORE} = true in [rules.{rule}]"
    if errors_field not in facts.signals:
        state = "consented but not sent" if errors_field in facts.consented else "not sent"
        return (
            f"field {errors_field} was {state}, so a source the agent could not read would go "
            f"unseen; request {errors_field} in the manifest, {fix}"
        )
    wanted = frozenset(fields)
    try:
        entries = _entries(facts, errors_field)
        failed = [
            f"{_text(e, 'source', errors_field)} ({_text(e, 'error', errors_field)})"
            for e in entries
            if e.get("field") in wanted
        ]
    except MalformedSignalError as exc:
        return str(exc)
    if not failed:
        return None
    return (
        f"could not read {listing(failed)}: fix that setting so it names a usable URL (or "
        f"remove it), {fix}"
    )


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
    "UNSAFE_IGNORE",
    "HostEntry",
    "MalformedSignalError",
    "Presence",
    "TunnelEntry",
    "host_entries",
    "listing",
    "not_sent_result",
    "presence",
    "tunnel_entries",
    "unreadable_sources",
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
    with_provider: bool = False,
) -> SentHosts | RuleResult:
    """The shared start of the host rules: a RuleResult if the rule is decided already
    (fields not sent, or a malformed signal), else the endpoints to check."""
    found = presence(facts, fields)
    if found.missing and (not unsafe_pass_if_not_sent or not found.sent):
        return not_sent_result(name, mode, found, unsafe_pass_if_not_sent=unsafe_pass_if_not_sent)
    skipped = f"; {found.reason}, skipped (unsafe_pass_if_not_sent)" if found.missing else ""
    try:
        entries = host_entries(facts, found.sent, with_provider=with_provider)
    except MalformedSignalError as exc:
        return RuleResult(name, mode, False, str(exc))
    return SentHosts(found.sent, entries, skipped)
