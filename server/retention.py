"""Retention: drop the signal data of attestation audit records once the manifest's promise
(``retention_days``) has run out, and delete expired nonces.

A record's retention is the longest ``retention_days`` among the manifest fields present in
its ``signals`` (it is kept as long as its longest-lived field promises, and no longer);
a record with no signals, or only fields the manifest no longer requests, uses the manifest's
maximum. Only ``data`` is nulled: the row (event, device, decision, time) stays, and the hash
chain covers ``data_sha256``, not ``data``, so ``audit verify`` still passes.
"""

from __future__ import annotations

from dataclasses import dataclass

from attest.manifest import Manifest
from server.nonces import purge_spent_nonces
from server.store import AuditEvent, AuditRecord
from server.store.sql import SqlStore

DAY_S = 86_400
ATTESTATION_EVENTS = ("attest", "attest.rejected")
_BATCH = 1000


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
    """(1) null data past retention, (2) delete expired nonces, (3) audit the purge.

    ``audit_empty=False`` (the serve timer) skips the audit record when nothing was purged."""
    shortest = min((r.retention_days for r in manifest.fields), default=0)
    purged, after = 0, 0
    # (1) only records older than the shortest retention can be due: fetch those in batches
    while True:
        page = store.audit_with_data_before(
            events=ATTESTATION_EVENTS, before=now - shortest * DAY_S, after_seq=after, limit=_BATCH
        )
        due = [r.seq for r in page if r.at < now - retention_days(r, manifest) * DAY_S]
        purged += len(due) if dry_run else store.purge_audit_data(due)
        if len(page) < _BATCH:
            break
        after = page[-1].seq
    # (2) expired nonces can never be spent again
    nonces = 0 if dry_run else purge_spent_nonces(store, now=now)
    report = PurgeReport(records_purged=purged, nonces_deleted=nonces, dry_run=dry_run)
    # (3) the purge itself is an audited admin action
    if not dry_run and (purged or audit_empty):
        store.append_audit(
            AuditEvent(
                "admin.purge",
                None,
                None,
                {"records_purged": purged, "nonces_deleted": nonces,
                 "manifest": manifest.sha256, "trigger": trigger},
            )
        )  # fmt: skip
    return report
