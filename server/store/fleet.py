"""The fleet projection: each device's latest state and value counts, derived from the audit
log so the console aggregates over small indexed tables instead of scanning audit JSON.

``FleetProjection.catch_up`` reads audit records after its cursor and applies them in one
transaction that also advances the cursor and records the alerts they raise, so replicas
running it side by side apply each record (and raise each alert) exactly once. The tables
can be dropped and rebuilt from the audit log at any time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from server.alerts.detect import USAGE_RULE_EVENTS, Alert, DeviceState
from server.console.projection import FleetBatch, Values
from server.store import AuditRecord
from server.store.console import read_tx, write_tx
from server.store.schema import (
    alert_deliveries,
    alert_events,
    audit_log,
    fleet_counts,
    fleet_daily,
    fleet_devices,
    fleet_reasons,
    fleet_value_counts,
    fleet_values,
    projection_cursor,
)
from server.store.schema import devices as device_table
from server.store.upsert import upsert

CURSOR = "fleet"
_CHUNK = 500  # ids per IN (...) list: under SQLite's variable limit
_OWN_EVENTS = "console."
_RACES = 3  # times a catch-up reads again after another projector moved the cursor
# events whose data the projection reads (``server.console.projection``, alert detection)
_EVENTS_WITH_DATA = frozenset({"attest", "attest.rejected", "enroll"}) | USAGE_RULE_EVENTS


def audit_from_row(row: Any) -> AuditRecord:
    """An audit record from a selected ``audit_log`` row."""
    return AuditRecord(
        row.seq,
        row.at,
        row.event,
        row.device_id,
        row.decision,
        json.loads(row.data) if row.data is not None else None,
        row.data_sha256,
        row.prev_hash,
        row.hash,
    )


_STATE_FIELDS = tuple(f.name for f in fields(DeviceState))


def _state_row(state: DeviceState) -> dict[str, Any]:
    # dataclasses.asdict deep-copies; this runs once per device per batch
    return {name: getattr(state, name) for name in _STATE_FIELDS}


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _data(row: Any) -> dict[str, Any] | None:
    """A row's data, decoded only for the events whose data the projection reads."""
    if row.data is None or row.event not in _EVENTS_WITH_DATA:
        return None
    try:
        data: dict[str, Any] = orjson.loads(row.data)
    except orjson.JSONDecodeError:  # e.g. an integer past 64 bits, which json reads
        data = json.loads(row.data)
    return data


class FleetProjection:
    """Applies new audit records to the fleet tables and records the alerts they raise."""

    def __init__(
        self,
        engine: Engine,
        *,
        alert_targets: Callable[[], Sequence[str]] = tuple,
        allow_run: int = 3,
    ) -> None:
        self.engine = engine
        self.alert_targets = alert_targets
        self.allow_run = allow_run

    def catch_up(self, *, limit: int = 500, now: int) -> int:
        """Apply up to ``limit`` records after the cursor; returns how many were applied.

        Records are read and applied in memory under a read transaction; only the result is
        written, in one short write transaction that first checks the cursor has not moved
        (another replica applied them meanwhile: then this reads again). So the database's
        write lock is held for the writes alone, not for decoding and applying, and verifier
        commits never queue behind the projection's Python work. Records of the console
        itself (page views, sign-ins) are skipped, so a page that catches up before
        rendering takes no write lock when nothing else happened."""
        for _ in range(_RACES):
            with read_tx(self.engine) as conn:
                cursor = self._read_cursor(conn)
                records = self._records_after(conn, cursor, limit)
                if not records:
                    return 0
                devices = sorted({r.device_id for r in records if r.device_id})
                batch = FleetBatch(*self._load(conn, devices), allow_run=self.allow_run)
            batch.apply_all(records)
            with write_tx(self.engine) as conn:
                if self._cursor(conn) != cursor:
                    continue  # another projector applied these: read again from its cursor
                self._write(conn, batch, now=now)
                conn.execute(
                    update(projection_cursor)
                    .where(projection_cursor.c.name == CURSOR)
                    .values(seq=records[-1].seq)
                )
            return len(records)
        return 0

    @staticmethod
    def _records_after(conn: Connection, cursor: int, limit: int) -> list[AuditRecord]:
        """The next records to apply, with only the columns the projection reads; record
        data is decoded only for the events whose data it uses."""
        a = audit_log.c
        rows = conn.execute(
            select(a.seq, a.at, a.event, a.device_id, a.decision, a.data)
            .where(a.seq > cursor, a.event.not_like(f"{_OWN_EVENTS}%"))
            .order_by(a.seq)
            .limit(limit)
        ).all()
        # the chain columns are not read: verifying the chain is ``audit verify``'s job
        return [
            AuditRecord(
                row.seq, row.at, row.event, row.device_id, row.decision, _data(row), "", "", ""
            )
            for row in rows
        ]

    def lag(self, *, cap: int = 100_000) -> int:
        """Audit records not yet applied (counted up to ``cap``)."""
        a = audit_log.c
        with read_tx(self.engine) as conn:
            cursor = conn.execute(
                select(projection_cursor.c.seq).where(projection_cursor.c.name == CURSOR)
            ).scalar()
            behind = (
                select(a.seq)
                .where(a.seq > (cursor or 0), a.event.not_like(f"{_OWN_EVENTS}%"))
                .limit(cap)
                .subquery()
            )
            return int(conn.execute(select(func.count()).select_from(behind)).scalar_one())

    @staticmethod
    def _read_cursor(conn: Connection) -> int:
        query = select(projection_cursor.c.seq).where(projection_cursor.c.name == CURSOR)
        return int(conn.execute(query).scalar() or 0)

    def _cursor(self, conn: Connection) -> int:
        query = select(projection_cursor.c.seq).where(projection_cursor.c.name == CURSOR)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        seq = conn.execute(query).scalar()
        if seq is None:
            upsert(
                conn, projection_cursor, [{"name": CURSOR, "seq": 0}], keys=["name"], add=["seq"]
            )
            seq = conn.execute(query).scalar()
        return int(seq or 0)

    @staticmethod
    def _load(
        conn: Connection, devices: Sequence[str]
    ) -> tuple[dict[str, DeviceState], dict[str, Values], dict[str, str]]:
        states: dict[str, DeviceState] = {}
        values: dict[str, Values] = {}
        key_classes: dict[str, str] = {}
        d = device_table.c
        for chunk in _chunks(devices):
            for row in conn.execute(select(d.device_id, d.key_class).where(d.device_id.in_(chunk))):
                key_classes[row.device_id] = row.key_class
            for row in conn.execute(
                select(fleet_devices).where(fleet_devices.c.device_id.in_(chunk))
            ):
                states[row.device_id] = DeviceState(**row._asdict())
            for row in conn.execute(
                select(fleet_values).where(fleet_values.c.device_id.in_(chunk))
            ):
                values.setdefault(row.device_id, set()).add((row.field, row.value, row.detail))
        return states, values, key_classes

    def _write(self, conn: Connection, batch: FleetBatch, *, now: int) -> None:
        upsert(
            conn,
            fleet_devices,
            [_state_row(batch.states[d]) for d in sorted(batch.changed_states)],
            keys=["device_id"],
        )
        changed = sorted(batch.changed_values)
        for chunk in _chunks(changed):
            conn.execute(delete(fleet_values).where(fleet_values.c.device_id.in_(chunk)))
        rows = [
            {"field": f, "value": v, "detail": d, "device_id": device}
            for device in changed
            for f, v, d in batch.values[device]
        ]
        if rows:
            # the projection's bulkiest write: plain executemany, no per-row compilation
            conn.exec_driver_sql(
                "INSERT INTO fleet_values (field, value, detail, device_id) VALUES (?, ?, ?, ?)"
                if conn.dialect.paramstyle == "qmark"
                else "INSERT INTO fleet_values (field, value, detail, device_id) "
                "VALUES (%s, %s, %s, %s)",
                [(r["field"], r["value"], r["detail"], r["device_id"]) for r in rows],
            )
        upsert(
            conn,
            fleet_value_counts,
            [
                {"field": f, "value": v, "detail": d, "devices": n}
                for (f, v, d), n in batch.counts.items()
                if n
            ],
            keys=["field", "value", "detail"],
            add=["devices"],
        )
        upsert(
            conn,
            fleet_daily,
            [{"day": day, "decision": dec, "count": n} for (day, dec), n in batch.daily.items()],
            keys=["day", "decision"],
            add=["count"],
        )
        upsert(
            conn,
            fleet_counts,
            [{"kind": k, "key": key, "n": n} for (k, key), n in batch.tallies.items() if n],
            keys=["kind", "key"],
            add=["n"],
        )
        upsert(
            conn,
            fleet_reasons,
            [{"reason": r, "count": n} for r, n in batch.reasons.items()],
            keys=["reason"],
            add=["count"],
        )
        record_alerts(conn, batch.alerts, targets=self.alert_targets(), now=now)


def record_alerts(
    conn: Connection, alerts: Sequence[Alert], *, targets: Sequence[str], now: int
) -> None:
    """Store alerts and one pending delivery per configured webhook."""
    for alert in alerts:
        event_id = conn.execute(
            insert(alert_events).values(
                at=now,
                kind=alert.kind.value,
                device_id=alert.device_id,
                audit_seq=alert.audit_seq,
                summary=alert.summary,
            )
        ).inserted_primary_key
        assert event_id is not None
        for target in targets:
            conn.execute(
                insert(alert_deliveries).values(
                    event_id=event_id[0],
                    target=target,
                    state="pending",
                    attempts=0,
                    next_attempt_at=now,
                )
            )
