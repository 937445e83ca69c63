"""The audit log: a hash chain (``chain``), purges and erasures that account for emptied
records (``coverage``), signed checkpoints with a key outside the database
(``checkpoints``), and ``verify_audit`` that checks all three (``verify``)."""

from __future__ import annotations

from server.audit.chain import (
    GENESIS_HASH,
    AuditChainError,
    VerifiedChain,
    chain_hash,
    data_digest,
    serialize_data,
    verify_chain,
)

__all__ = [
    "GENESIS_HASH",
    "AuditChainError",
    "VerifiedChain",
    "chain_hash",
    "data_digest",
    "serialize_data",
    "verify_chain",
]
