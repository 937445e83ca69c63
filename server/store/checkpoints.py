"""Signed audit checkpoints as rows (the key that signs them lives elsewhere)."""

from __future__ import annotations

from sqlalchemy import insert, select

from server.audit.chain import GENESIS_HASH
from server.audit.checkpoints import Checkpoint
from server.store.auditlog import AuditLogStore
from server.store.schema import audit_checkpoints, audit_log


class CheckpointStore(AuditLogStore):
    """Read the chain's head; keep and list checkpoints."""

    def audit_head(self) -> tuple[int, str]:
        """(records, head hash) of the chain now; (0, genesis) when empty."""
        a = audit_log.c
        with self._read() as conn:
            row = conn.execute(select(a.seq, a.hash).order_by(a.seq.desc()).limit(1)).first()
        return (row.seq, row.hash) if row is not None else (0, GENESIS_HASH)

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Keep a signed checkpoint."""
        with self._tx() as conn:
            conn.execute(
                insert(audit_checkpoints).values(
                    count=checkpoint.count,
                    head_hash=checkpoint.head_hash,
                    at=checkpoint.at,
                    key_id=checkpoint.key_id,
                    signature=checkpoint.signature,
                )
            )

    def checkpoints(self) -> list[Checkpoint]:
        """Every stored checkpoint, oldest chain first."""
        c = audit_checkpoints.c
        with self._read() as conn:
            rows = conn.execute(
                select(c.count, c.head_hash, c.at, c.key_id, c.signature).order_by(c.count, c.id)
            ).all()
        # by position: a Row's ``count`` is tuple.count
        return [Checkpoint(r[0], r[1], r[2], r[3], r[4]) for r in rows]
