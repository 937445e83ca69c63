"""Which audit records raise an alert, given the device's state before them.

Kinds (DESIGN: console, alerts): a device's base-URL classification or time zone changed, a
deny after a run of allows, a usage rule fired (``usage.denied`` / ``usage.reported`` audit
records, written at forward auth), and an audit verify failure (raised by whoever ran it).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from server.console.evidence import base_url_changes, base_urls, decode_base_urls, timezone
from server.store import AuditRecord

USAGE_RULE_EVENTS = frozenset({"usage.denied", "usage.reported"})


class AlertKind(StrEnum):
    """What happened."""

    BASEURL_CLASS_CHANGE = "baseurl-class-change"
    TIMEZONE_CHANGE = "timezone-change"
    DENY_AFTER_ALLOWS = "deny-after-allows"
    USAGE_RULE = "usage-rule"
    AUDIT_VERIFY_FAILED = "audit-verify-failed"


@dataclass(frozen=True)
class DeviceState:
    """A device as the fleet projection last saw it."""

    device_id: str
    last_seq: int
    last_at: int
    last_decision: str
    attestations: int
    denials: int
    allow_run: int
    timezone: str | None
    baseurls: str
    key_class: str = ""
    state: str = "active"


@dataclass(frozen=True)
class Alert:
    """One alert to record and deliver."""

    kind: AlertKind
    summary: str
    device_id: str | None = None
    audit_seq: int | None = None


def detect_alerts(prev: DeviceState | None, record: AuditRecord, *, allow_run: int) -> list[Alert]:
    """Alerts raised by ``record`` for a device last seen as ``prev`` (None: first record)."""
    device = record.device_id
    if record.event in USAGE_RULE_EVENTS:
        data = record.data or {}
        rule, mode = str(data.get("rule", "unknown rule")), str(data.get("mode", ""))
        what = f"usage rule {rule} ({mode}) fired for device {device}: {data.get('reason', '')}"
        return [Alert(AlertKind.USAGE_RULE, what.rstrip(": "), device, record.seq)]
    if record.event != "attest" or prev is None:
        return []
    out: list[Alert] = []
    if record.decision == "deny" and prev.allow_run >= allow_run:
        out.append(
            Alert(
                AlertKind.DENY_AFTER_ALLOWS,
                f"device {device} denied after {prev.allow_run} allows in a row",
                device,
                record.seq,
            )
        )
    signals = (record.data or {}).get("signals")
    if not isinstance(signals, dict):
        return out
    new_tz = timezone(signals)
    if prev.timezone and new_tz and new_tz != prev.timezone:
        out.append(
            Alert(
                AlertKind.TIMEZONE_CHANGE,
                f"device {device}: time zone changed from {prev.timezone} to {new_tz}",
                device,
                record.seq,
            )
        )
    changes = base_url_changes(decode_base_urls(prev.baseurls), base_urls(signals))
    if changes and prev.attestations > 0:
        out.append(
            Alert(
                AlertKind.BASEURL_CLASS_CHANGE,
                f"device {device}: " + "; ".join(changes),
                device,
                record.seq,
            )
        )
    return out
