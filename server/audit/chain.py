"""The audit log's hash chain.

Each record's hash covers the previous hash and the record's fields, with its data by digest
(``data_sha256``) so that retention can purge signal details and leave a chain that still
verifies. ``verify_chain`` recomputes everything and names the first broken record; an
emptied record passes only when a purge or erasure event covers it (``coverage``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from server.audit.coverage import Coverage
from server.errors import ServerError
from server.store import AuditRecord

GENESIS_HASH = "0" * 64


class AuditChainError(ServerError):
    """The chain does not verify; ``seq`` is the first broken record."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"audit record {seq}: {reason}")
        self.seq = seq


def serialize_data(data: dict[str, Any]) -> str:
    """The one JSON form audit data is stored and hashed in."""
    return json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def data_digest(serialized: str) -> str:
    """SHA-256 of serialized audit data."""
    return hashlib.sha256(serialized.encode()).hexdigest()


def chain_hash(
    *,
    prev_hash: str,
    seq: int,
    at: int,
    event: str,
    device_id: str | None,
    decision: str | None,
    data_sha256: str,
) -> str:
    """Hash of one record, linked to its predecessor."""
    body = json.dumps(
        [prev_hash, seq, at, event, device_id, decision, data_sha256], separators=(",", ":")
    )
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class VerifiedChain:
    """A chain that verified: how many records, the head hash, how many were purged."""

    records: int
    head_hash: str
    purged: int


def verify_chain(
    records: Iterable[AuditRecord], *, coverage: Coverage | None = None
) -> VerifiedChain:
    """Recompute the chain from genesis; raise AuditChainError at the first broken record.

    With ``coverage``, a record whose data is gone must be covered by a later purge or
    erasure event; without it (a partial export), emptied records are only counted."""
    prev, expected_seq, count, purged = GENESIS_HASH, 1, 0, 0
    for rec in records:
        if rec.seq != expected_seq:
            raise AuditChainError(expected_seq, f"missing (next present record is {rec.seq})")
        if rec.prev_hash != prev:
            raise AuditChainError(rec.seq, "prev_hash does not match the previous record")
        if rec.data is None:
            if coverage is not None and not coverage.covers(rec):
                raise AuditChainError(
                    rec.seq, "data was emptied outside a purge or erasure (no event covers it)"
                )
            purged += 1
        elif data_digest(serialize_data(rec.data)) != rec.data_sha256:
            raise AuditChainError(rec.seq, "data was altered (digest mismatch)")
        recomputed = chain_hash(
            prev_hash=prev,
            seq=rec.seq,
            at=rec.at,
            event=rec.event,
            device_id=rec.device_id,
            decision=rec.decision,
            data_sha256=rec.data_sha256,
        )
        if recomputed != rec.hash:
            raise AuditChainError(rec.seq, "record was altered (hash mismatch)")
        prev, expected_seq, count = rec.hash, expected_seq + 1, count + 1
    return VerifiedChain(records=count, head_hash=prev, purged=purged)
