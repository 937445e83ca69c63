"""Retention: drop the signal data of attestation audit records once the manifest's promise
(``retention_days``) has run out, and delete expired nonces. Each purge event says which
records it emptied (``server.audit.coverage``), so ``audit verify`` accepts exactly those.

A record's retention is the longest ``retention_days`` among the manifest fields present in
its ``signals`` (it is kept as long as its longest-lived field promises, and no longer);
a record with no signals, or only fields the manifest no longer requests, uses the manifest's
maximum. Only ``data`` is nulled: the row (event, device, decision, time) stays, and the hash
chain covers ``data_sha256``, not ``data``, so ``audit verify`` still passes.
"""

from __future__ import annotations

from dataclasses import dataclass

from attest.manifest import Manifest
from server.audit.coverage import PURGE_EVENT
from server.nonces import purge_spent_nonces
from server.store import AuditEvent, AuditRecord
from server.store.sql import SqlStore

DAY_S = 86_400
ATTESTATION_EVENTS = ("attest", "attest.rejected")
_BATCH = 1000
_EVENT_BATCH = 10_000  # records emptied per transaction (and per purge event)


@dataclass(frozen=True)
class PurgeReport:
    """What a purge did (or, with ``dry_run``, would do)."""

    records_purged: int
    nonces_deleted: int
    dry_run: bool


def retention_days(record: AuditRecord, manifest: Manifest) -> int:
    """Days the record's data may be kept under ``manifest``."""
    by_field = {r.field.id: r.retention_days for r in manifest.fields}
    longest = max(by_field.values(), default=0)
    signals = (record.data or {}).get("signals")
    present = [by_field[f] for f in signals if f in by_field] if isinstance(signals, dict) else []
    return max(present) if present else longest


def purge_expired(
    store: SqlStore,
    manifest: Manifest,
    *,
    now: int,
    dry_run: bool = False,
    audit_empty: bool = True,
    trigger: str = "cli",
) -> PurgeReport:
    """(1) find data past retention, (2) delete expired nonces, (3) null the data and audit
    the purge in one transaction, so the event covers exactly what it emptied.

    ``audit_empty=False`` (the serve timer) skips the audit record when nothing was purged."""
    shortest = min((r.retention_days for r in manifest.fields), default=0)
    due: list[int] = []
    after = 0
    # (1) only records older than the shortest retention can be due: fetch those in batches
    while True:
        page = store.audit_with_data_before(
            events=ATTESTATION_EVENTS, before=now - shortest * DAY_S, after_seq=after, limit=_BATCH
        )
        due += [r.seq for r in page if r.at < now - retention_days(r, manifest) * DAY_S]
        if len(page) < _BATCH:
            break
        after = page[-1].seq
    if dry_run:
        return PurgeReport(records_purged=len(due), nonces_deleted=0, dry_run=True)
    # (2) expired nonces can never be spent again
    nonces = purge_spent_nonces(store, now=now)
    # (3) the purge is an audited admin action whose record covers the emptied records
    purged = 0
    data = {"nonces_deleted": nonces, "manifest": manifest.sha256, "trigger": trigger}
    for i in range(0, len(due), _EVENT_BATCH):
        event = AuditEvent(
            PURGE_EVENT, None, None, data if i == 0 else {**data, "nonces_deleted": 0}
        )
        purged += store.purge_audit_data(due[i : i + _EVENT_BATCH], audit=event)
    if not due and audit_empty:
        store.purge_audit_data([], audit=AuditEvent(PURGE_EVENT, None, None, data))
    return PurgeReport(records_purged=purged, nonces_deleted=nonces, dry_run=False)
