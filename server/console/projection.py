"""The fleet projection's rules: how each audit record changes a device's state, the value
sets and counts, the tallies, and which alerts it raises. Pure: no database here; the store
(``server.store.fleet``) loads the states a batch touches and writes the result."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from server.alerts.detect import Alert, DeviceState, detect_alerts
from server.console.evidence import (
    base_urls,
    deny_reasons,
    encode_base_urls,
    field_values,
    timezone,
)
from server.store import AuditRecord

CONSENT_FIELD = "consent.manifest_sha256"  # manifest versions in use, counted like a field
ERASE_EVENTS = frozenset({"device.erased", "admin.device.erase"})
REVOKE_EVENTS = frozenset({"admin.device.revoke"})
DAY_S = 86_400

Values = set[tuple[str, str, str]]


def _carries_values(record: AuditRecord) -> bool:
    """An attestation whose signals replace its device's value set (see ``apply``)."""
    return (
        record.event == "attest"
        and record.decision in ("allow", "deny")
        and isinstance((record.data or {}).get("signals"), dict)
    )


class FleetBatch:
    """The effect of a run of audit records on the fleet tables, accumulated in memory (the
    store writes it at once): device states, value sets and counts, tallies, alerts."""

    def __init__(
        self,
        states: dict[str, DeviceState],
        values: dict[str, Values],
        key_classes: dict[str, str],
        allow_run: int,
    ) -> None:
        self.states = states
        self.key_classes = key_classes
        self.tallies: Counter[tuple[str, str]] = Counter()
        self.values = values
        self.allow_run = allow_run
        self.changed_values: set[str] = set()
        self.changed_states: set[str] = set()
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.daily: Counter[tuple[int, str]] = Counter()
        self.reasons: Counter[str] = Counter()
        self.alerts: list[Alert] = []
        self._last_values: dict[str, int] | None = None  # set while ``apply_all`` runs

    def _set_values(self, device: str, new: Values) -> None:
        old = self.values.get(device, set())
        for key in old - new:
            self.counts[key] -= 1
        for key in new - old:
            self.counts[key] += 1
        self.values[device] = new
        self.changed_values.add(device)

    def apply_all(self, records: Sequence[AuditRecord]) -> None:
        """Apply a run of records in sequence order. A device's value set is computed only
        from its last attestation in the run: the sets before it would be replaced anyway,
        and the counts depend only on the first and the last set."""
        last: dict[str, int] = {}
        for record in records:
            if _carries_values(record) and record.device_id is not None:
                last[record.device_id] = record.seq
        self._last_values = last
        for record in records:
            self.apply(record)
        self._last_values = None

    def apply(self, record: AuditRecord) -> None:
        """Apply one audit record, in sequence order."""
        device = record.device_id
        if record.event == "attest.rejected":
            self.daily[(record.at // DAY_S * DAY_S, "reject")] += 1
            self.reasons[f"step:{(record.data or {}).get('step', 'unknown')}"] += 1
            return
        if device is None:
            return
        prev = self.states.get(device)
        self.alerts.extend(detect_alerts(prev, record, allow_run=self.allow_run))
        if prev is None and record.event in ("enroll", "attest"):
            key_class = self.key_classes.get(device) or str((record.data or {}).get("key_class"))
            prev = DeviceState(device, 0, 0, "", 0, 0, 0, None, "{}", key_class, "active")
            self.tallies[("device", f"{key_class}|active")] += 1
            self._put(prev)
        if prev is None:
            return
        if record.event in ERASE_EVENTS:
            self._set_values(device, set())
            self._put(replace(prev, timezone=None, baseurls="{}"), state="erased")
            return
        if record.event in REVOKE_EVENTS and prev.state == "active":
            self._put(prev, state="revoked")
            return
        if record.event != "attest" or record.decision not in ("allow", "deny"):
            return
        self.daily[(record.at // DAY_S * DAY_S, record.decision)] += 1
        denied = record.decision == "deny"
        for reason in deny_reasons(record.data) if denied else ():
            self.reasons[reason] += 1
        base = prev
        if base.last_decision:
            self.tallies[("decision", base.last_decision)] -= 1
        self.tallies[("decision", record.decision)] += 1
        found = (record.data or {}).get("signals")
        # purged records still count, but carry no values
        signals: dict[str, Any] | None = found if isinstance(found, dict) else None
        state = replace(
            base,
            last_seq=record.seq,
            last_at=record.at,
            last_decision=record.decision,
            attestations=base.attestations + 1,
            denials=base.denials + int(denied),
            allow_run=0 if denied else base.allow_run + 1,
            timezone=timezone(signals) if signals is not None else base.timezone,
            baseurls=encode_base_urls(base_urls(signals)) if signals is not None else base.baseurls,
        )
        if signals is not None:
            superseded = self._last_values is not None and self._last_values[device] != record.seq
            if not superseded:
                values = field_values(signals)
                consent = (record.data or {}).get("consent") or {}
                if isinstance(consent, dict) and consent.get("manifest_sha256"):
                    values.add((CONSENT_FIELD, str(consent["manifest_sha256"])[:64], ""))
                self._set_values(device, values)
        self._put(state)

    def _put(self, device: DeviceState, *, state: str | None = None) -> None:
        """Store a device's new state; a changed ``state`` moves it between tallies."""
        if state is not None and state != device.state:
            self.tallies[("device", f"{device.key_class}|{device.state}")] -= 1
            self.tallies[("device", f"{device.key_class}|{state}")] += 1
            device = replace(device, state=state)
        self.states[device.device_id] = device
        self.changed_states.add(device.device_id)
