"""Writing checkpoints and verifying the log against them, on a store and two files: the
checkpoint key and this host's witness (the newest checkpoint, kept outside the database so
deleting checkpoint rows does not hide a truncation)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from server.audit.checkpoints import (
    Checkpoint,
    CheckpointSigner,
    load_public_key,
    read_witness,
    write_witness,
)
from server.audit.coverage import COVERING_EVENTS
from server.audit.verify import VerifiedAudit, verify_audit
from server.store import AuditRecord


class AuditSource(Protocol):
    """The store methods checkpoints and verification use."""

    def audit_head(self) -> tuple[int, str]:
        """(records, head hash)."""
        ...

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Keep a checkpoint."""
        ...

    def checkpoints(self) -> list[Checkpoint]:
        """Every stored checkpoint."""
        ...

    def iter_audit(self, *, batch: int = 1000, **filters: Any) -> Iterator[AuditRecord]:
        """The chain in order."""
        ...

    def audit_events(self, events: Iterable[str]) -> list[AuditRecord]:
        """Records of these events, in order."""
        ...


@dataclass(frozen=True)
class AuditAnchor:
    """Where the checkpoint key and the witness live."""

    key_path: Path
    witness_path: Path

    def checkpoint(self, store: AuditSource, *, now: int) -> Checkpoint:
        """Sign the chain's head now; keep it in the database and the witness file."""
        signer = CheckpointSigner.load(self.key_path, create=True)
        count, head = store.audit_head()
        made = signer.sign(count=count, head_hash=head, at=now)
        store.add_checkpoint(made)
        write_witness(self.witness_path, made)
        return made

    def verify(self, store: AuditSource, *, public_key: Path | None = None) -> VerifiedAudit:
        """``verify_audit`` over the store, its checkpoints and the witness."""
        public = load_public_key(public_key or self.key_path)
        found = {(c.count, c.head_hash, c.at, c.signature): c for c in store.checkpoints()}
        witness = read_witness(self.witness_path)
        if witness is not None:
            found.setdefault(
                (witness.count, witness.head_hash, witness.at, witness.signature), witness
            )
        return verify_audit(
            store.iter_audit(),
            covering_events=store.audit_events(COVERING_EVENTS),
            checkpoints=list(found.values()),
            public_key=public,
        )
