"""``Store`` on SQLAlchemy Core: SQLite (WAL, one file) by default, PostgreSQL for replicas.

``SqlStore`` puts together one class per concern: ``engine`` (connections, durability,
transaction scopes), ``auditlog`` (the hash chain), ``devices`` (devices and enrollment),
``nonces`` (single use), ``gateways`` (introspection credentials) and ``checkpoints``
(signed audit checkpoints).
"""

from __future__ import annotations

from server.store import DuplicateKeyError
from server.store.checkpoints import CheckpointStore
from server.store.devices import DeviceStore
from server.store.engine import RETRY_AFTER_S, AuditObserver, make_engine
from server.store.gateways import GatewayCredentialRecord, GatewayCredentialStore
from server.store.nonces import NonceStore

__all__ = [
    "RETRY_AFTER_S",
    "AuditObserver",
    "DuplicateKeyError",
    "GatewayCredentialRecord",
    "SqlStore",
    "make_engine",
]


class SqlStore(DeviceStore, NonceStore, GatewayCredentialStore, CheckpointStore):
    """The verifier's database (every table, one engine)."""
