"""``audit verify``: the chain, its purges and erasures, and its signed checkpoints.

Steps, each raising with the first problem it finds:

1. every checkpoint (database rows and this host's witness file) is signed by the
   checkpoint key; a chain with records but no checkpoint cannot be told from a rewritten
   one and fails;
2. the chain recomputes from genesis, and every emptied record is covered by a later purge
   or erasure event (``coverage``);
3. at each checkpoint's count the recomputed head equals the signed head (a rewrite by
   someone without the key changes it);
4. the chain holds at least as many records as the longest checkpoint (truncation).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from server.audit.chain import GENESIS_HASH, AuditChainError, verify_chain
from server.audit.checkpoints import Checkpoint, CheckpointError, verify_checkpoint
from server.audit.coverage import Coverage
from server.store import AuditRecord


@dataclass(frozen=True)
class VerifiedAudit:
    """A log that verified: records, head, purged records, and the newest checkpoint."""

    records: int
    head_hash: str
    purged: int
    checkpoints: int
    last_checkpoint: Checkpoint | None


def _at_checkpoints(
    records: Iterable[AuditRecord], checkpoints: Sequence[Checkpoint]
) -> Iterator[AuditRecord]:
    """Pass records through, checking each checkpoint's head as its count goes by (3)."""
    by_count: dict[int, list[Checkpoint]] = {}
    for cp in checkpoints:
        by_count.setdefault(cp.count, []).append(cp)
    for cp in by_count.get(0, []):
        if cp.head_hash != GENESIS_HASH:
            raise CheckpointError(f"checkpoint of 0 records at {cp.at}: head is not genesis")
    for rec in records:
        yield rec
        for cp in by_count.get(rec.seq, ()):
            if cp.head_hash != rec.hash:
                raise AuditChainError(
                    rec.seq,
                    f"head no longer matches the checkpoint signed at {cp.at}: records up to "
                    f"{cp.count} were rewritten",
                )


def verify_audit(
    records: Iterable[AuditRecord],
    *,
    covering_events: Iterable[AuditRecord],
    checkpoints: Sequence[Checkpoint],
    public_key: Ed25519PublicKey,
) -> VerifiedAudit:
    """Verify the whole log (steps in the module docstring); raise at the first problem.

    ``records`` is the chain in order; ``covering_events`` the purge and erasure events
    (read first, so one pass over the chain suffices)."""
    # (1) signatures first: an unsigned anchor proves nothing
    for cp in checkpoints:
        verify_checkpoint(cp, public_key)
    ordered = sorted(checkpoints, key=lambda cp: cp.count)
    # (2) + (3) one pass over the chain
    chain = verify_chain(_at_checkpoints(records, ordered), coverage=Coverage(covering_events))
    if chain.records and not ordered:
        raise CheckpointError(
            "no signed checkpoint covers the log, so a rewrite cannot be ruled out: run "
            "'envattest-server audit checkpoint' (serve writes them on a schedule)"
        )
    # (4) truncation: fewer records than a checkpoint vouched for
    if ordered and ordered[-1].count > chain.records:
        last = ordered[-1]
        raise AuditChainError(
            chain.records + 1,
            f"missing: the checkpoint signed at {last.at} covers {last.count} records, the "
            f"log has {chain.records} (truncated)",
        )
    return VerifiedAudit(
        records=chain.records,
        head_hash=chain.head_hash,
        purged=chain.purged,
        checkpoints=len(ordered),
        last_checkpoint=ordered[-1] if ordered else None,
    )
