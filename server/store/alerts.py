"""Alert events and their deliveries: claimed by one sender at a time, retried with back-off."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, func, select, update

from server.alerts.detect import Alert
from server.store.console import read_tx, write_tx
from server.store.fleet import record_alerts
from server.store.schema import alert_deliveries, alert_events


@dataclass(frozen=True)
class DueDelivery:
    """A delivery to attempt now."""

    event_id: int
    target: str
    attempts: int
    at: int
    kind: str
    device_id: str | None
    audit_seq: int | None
    summary: str


@dataclass(frozen=True)
class AlertRow:
    """An alert with one delivery's state (for the console)."""

    event_id: int
    at: int
    kind: str
    device_id: str | None
    summary: str
    target: str | None
    state: str | None
    attempts: int
    last_error: str | None


class AlertStore:
    """Reads and updates alert deliveries."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, alerts: Sequence[Alert], *, targets: Sequence[str], now: int) -> None:
        """Record alerts raised outside the projection (an audit verify failure)."""
        with write_tx(self.engine) as conn:
            record_alerts(conn, alerts, targets=targets, now=now)

    def claim_due(self, *, now: int, lease_s: int, limit: int = 20) -> list[DueDelivery]:
        """Pending deliveries due now, each leased to this caller by a conditional UPDATE."""
        d, e = alert_deliveries.c, alert_events.c
        query = (
            select(
                d.event_id,
                d.target,
                d.attempts,
                d.next_attempt_at,
                e.at,
                e.kind,
                e.device_id,
                e.audit_seq,
                e.summary,
            )
            .join(alert_events, e.event_id == d.event_id)
            .where(d.state == "pending", d.next_attempt_at <= now)
            .order_by(d.next_attempt_at)
            .limit(limit)
        )
        claimed = []
        with write_tx(self.engine) as conn:
            for row in conn.execute(query).all():
                taken = conn.execute(
                    update(alert_deliveries)
                    .where(
                        d.event_id == row.event_id,
                        d.target == row.target,
                        d.next_attempt_at == row.next_attempt_at,
                        d.state == "pending",
                    )
                    .values(next_attempt_at=now + lease_s)
                )
                if taken.rowcount == 1:
                    claimed.append(
                        DueDelivery(
                            row.event_id,
                            row.target,
                            row.attempts,
                            row.at,
                            row.kind,
                            row.device_id,
                            row.audit_seq,
                            row.summary,
                        )
                    )
        return claimed

    def settle(
        self, delivery: DueDelivery, *, ok: bool, now: int, error: str | None, retry_at: int | None
    ) -> str:
        """Record an attempt: delivered, pending (retry at ``retry_at``) or failed."""
        state = "delivered" if ok else ("pending" if retry_at is not None else "failed")
        d = alert_deliveries.c
        with write_tx(self.engine) as conn:
            conn.execute(
                update(alert_deliveries)
                .where(d.event_id == delivery.event_id, d.target == delivery.target)
                .values(
                    state=state,
                    attempts=delivery.attempts + 1,
                    last_error=None if ok else (error or "")[:500],
                    delivered_at=now if ok else None,
                    next_attempt_at=retry_at if retry_at is not None else now,
                )
            )
        return state

    def states(self) -> dict[str, int]:
        """How many deliveries are in each state."""
        d = alert_deliveries.c
        with read_tx(self.engine) as conn:
            rows = conn.execute(select(d.state, func.count()).group_by(d.state)).all()
        return {str(state): int(n) for state, n in rows}

    def recent(self, *, limit: int = 100, before_id: int | None = None) -> list[AlertRow]:
        """Newest alerts first, one row per delivery (or one without delivery)."""
        d, e = alert_deliveries.c, alert_events.c
        query = (
            select(
                e.event_id,
                e.at,
                e.kind,
                e.device_id,
                e.summary,
                d.target,
                d.state,
                func.coalesce(d.attempts, 0).label("attempts"),
                d.last_error,
            )
            .select_from(alert_events.outerjoin(alert_deliveries, d.event_id == e.event_id))
            .order_by(e.event_id.desc())
            .limit(limit)
        )
        if before_id is not None:
            query = query.where(e.event_id < before_id)
        with read_tx(self.engine) as conn:
            return [AlertRow(**r._asdict()) for r in conn.execute(query)]
