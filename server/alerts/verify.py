"""An audit verify failure is an alert, whoever ran the verification (console or CLI)."""

from __future__ import annotations

from server.alerts.config import parse_alert_settings
from server.alerts.detect import Alert, AlertKind
from server.audit import AuditChainError
from server.audit.checkpoints import CheckpointError
from server.config import ServerConfig
from server.store.alerts import AlertStore
from server.store.sql import SqlStore


def alert_verify_failure(
    store: SqlStore,
    config: ServerConfig,
    error: AuditChainError | CheckpointError,
    *,
    now: int,
    by: str,
) -> None:
    """Record the alert and queue it for every configured webhook (sent by ``serve``)."""
    targets = parse_alert_settings(config.alerts, config.data_dir).targets
    summary = f"audit log verification by {by} failed: {error}"
    seq = error.seq if isinstance(error, AuditChainError) else None
    AlertStore(store.engine).add(
        [Alert(AlertKind.AUDIT_VERIFY_FAILED, summary, None, seq)], targets=targets, now=now
    )
