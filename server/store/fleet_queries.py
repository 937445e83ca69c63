"""Read queries behind the console's pages: aggregates over the fleet projection and the
devices table, each served by an index, and keyset-paginated lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, case, func, or_, select

from server.store import AuditRecord
from server.store.console import read_tx
from server.store.fleet import audit_from_row
from server.store.schema import (
    audit_checkpoints,
    audit_log,
    devices,
    fleet_counts,
    fleet_daily,
    fleet_devices,
    fleet_reasons,
    fleet_value_counts,
    fleet_values,
    usage_networks,
    usage_requests,
)

PAGE = 50


@dataclass(frozen=True)
class DeviceFilter:
    """Filters of the device list (every one optional)."""

    q: str = ""
    key_class: str = ""
    state: str = ""
    decision: str = ""
    field: str = ""
    value: str = ""
    detail: str | None = None
    stale_before: int | None = None
    after: str = ""


@dataclass(frozen=True)
class Overview:
    """The fleet page's figures."""

    by_key_class: dict[tuple[str, str], int]
    by_last_decision: dict[str, int]
    active: int
    fresh: int
    daily: list[tuple[int, str, int]]
    reasons: list[tuple[str, int]]

    @property
    def stale(self) -> int:
        """Active devices whose last attestation is older than the token lifetime (or none)."""
        return self.active - self.fresh


def _state_expr() -> Any:
    d = devices.c
    return case(
        (d.erased_at.is_not(None), "erased"), (d.revoked_at.is_not(None), "revoked"), else_="active"
    )


class FleetQueries:
    """What the console reads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def overview(self, *, fresh_since: int, days_since: int) -> Overview:
        """Devices by key class and state, by last decision, stale count, decisions per day,
        top denial reasons."""
        f, c = fleet_devices.c, fleet_counts.c
        with read_tx(self.engine) as conn:
            by_class: dict[tuple[str, str], int] = {}
            by_decision: dict[str, int] = {}
            for kind, key, n in conn.execute(select(c.kind, c.key, c.n).where(c.n != 0)):
                if kind == "device":
                    key_class, _, state = str(key).partition("|")
                    by_class[(key_class, state)] = int(n)
                elif kind == "decision":
                    by_decision[str(key)] = int(n)
            fresh = conn.execute(
                select(func.count())
                .select_from(fleet_devices)
                .where(f.state == "active", f.last_at >= fresh_since)
            ).scalar_one()
            daily = [
                (int(day), str(dec), int(n))
                for day, dec, n in conn.execute(
                    select(fleet_daily).where(fleet_daily.c.day >= days_since).order_by("day")
                )
            ]
            reasons = [
                (str(r), int(n))
                for r, n in conn.execute(
                    select(fleet_reasons).order_by(fleet_reasons.c.count.desc()).limit(10)
                )
            ]
        active = sum(n for (_, s), n in by_class.items() if s == "active")
        return Overview(by_class, by_decision, active, int(fresh), daily, reasons)

    def stale_devices(self, *, before: int, limit: int) -> list[dict[str, Any]]:
        """Active devices whose last attestation (0: none) is older than ``before``, oldest
        first."""
        f = fleet_devices.c
        query = (
            select(f.device_id, f.key_class, f.last_at, f.last_decision)
            .where(f.state == "active", f.last_at < before)
            .order_by(f.last_at, f.device_id)
            .limit(limit)
        )
        with read_tx(self.engine) as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def devices(self, flt: DeviceFilter, *, limit: int = PAGE) -> list[dict[str, Any]]:
        """One page of devices (ordered by id, after ``flt.after``), with their latest state."""
        d, f, v = devices.c, fleet_devices.c, fleet_values.c
        source = devices.outerjoin(fleet_devices, f.device_id == d.device_id)
        query = select(
            d.device_id, d.key_class, d.enrolled_at, _state_expr().label("state"),
            f.last_at, f.last_decision, f.attestations, f.denials, f.timezone,
        )  # fmt: skip
        conds: list[Any] = []
        if flt.field:
            source = source.join(fleet_values, v.device_id == d.device_id)
            conds += [v.field == flt.field, v.value == flt.value]
            if flt.detail is not None:
                conds.append(v.detail == flt.detail)
            query = query.distinct()
        if flt.q:
            conds.append(d.device_id.startswith(flt.q, autoescape=True))
        if flt.key_class:
            conds.append(d.key_class == flt.key_class)
        if flt.state == "active":
            conds += [d.revoked_at.is_(None), d.erased_at.is_(None)]
        elif flt.state == "revoked":
            conds += [d.revoked_at.is_not(None), d.erased_at.is_(None)]
        elif flt.state == "erased":
            conds.append(d.erased_at.is_not(None))
        if flt.decision:
            conds.append(f.last_decision == flt.decision)
        if flt.stale_before is not None:
            conds += [
                or_(f.last_at.is_(None), f.last_at < flt.stale_before),
                d.revoked_at.is_(None),
                d.erased_at.is_(None),
            ]
        if flt.after:
            conds.append(d.device_id > flt.after)
        query = query.select_from(source).where(*conds).order_by(d.device_id).limit(limit)
        with read_tx(self.engine) as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def value_counts(self, *, top: int = 25) -> dict[str, list[tuple[str, str, int]]]:
        """Per field, the ``top`` most common ``(value, detail, devices)``."""
        c = fleet_value_counts.c
        rank = (
            func.row_number()
            .over(partition_by=c.field, order_by=(c.devices.desc(), c.value))
            .label("rank")
        )
        inner = select(c.field, c.value, c.detail, c.devices, rank).where(c.devices > 0).subquery()
        query = select(inner).where(inner.c.rank <= top).order_by(inner.c.field, inner.c.rank)
        out: dict[str, list[tuple[str, str, int]]] = {}
        with read_tx(self.engine) as conn:
            for row in conn.execute(query):
                out.setdefault(row.field, []).append((row.value, row.detail, int(row.devices)))
        return out

    def distinct_values(self) -> dict[str, int]:
        """How many distinct values each field has across the fleet."""
        c = fleet_value_counts.c
        with read_tx(self.engine) as conn:
            rows = conn.execute(
                select(c.field, func.count()).where(c.devices > 0).group_by(c.field)
            ).all()
        return {str(f): int(n) for f, n in rows}

    def device_state(self, device_id: str) -> dict[str, Any] | None:
        """The projection's row for one device."""
        with read_tx(self.engine) as conn:
            row = conn.execute(
                select(fleet_devices).where(fleet_devices.c.device_id == device_id)
            ).first()
        return None if row is None else dict(row._mapping)

    def usage(self, device_id: str, *, since: int) -> tuple[list[dict[str, Any]], int]:
        """Verifier-observed usage of a device's tokens: client networks (newest first) and
        requests since ``since`` (unix seconds)."""
        n, q = usage_networks.c, usage_requests.c
        with read_tx(self.engine) as conn:
            networks = [
                dict(r._mapping)
                for r in conn.execute(
                    select(n.network, n.jti, n.first_seen, n.last_seen)
                    .where(n.device_id == device_id)
                    .order_by(n.last_seen.desc())
                    .limit(20)
                )
            ]
            requests = conn.execute(
                select(func.coalesce(func.sum(q.requests), 0)).where(
                    q.device_id == device_id, q.minute >= since // 60
                )
            ).scalar_one()
        return networks, int(requests)

    def latest_checkpoint(self) -> dict[str, Any] | None:
        """The newest signed audit checkpoint (head count, hash, time, key), if any."""
        c = audit_checkpoints.c
        with read_tx(self.engine) as conn:
            row = conn.execute(
                select(c.count, c.head_hash, c.at, c.key_id).order_by(c.count.desc()).limit(1)
            ).first()
        return None if row is None else dict(row._mapping)


@dataclass(frozen=True)
class AuditFilter:
    """Filters of the audit page (and of its JSONL export)."""

    event: str = ""
    device_id: str = ""
    decision: str = ""
    since: int | None = None
    before_seq: int | None = None


class AuditQueries:
    """Newest-first pages of the audit log, served by its indexes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def page(self, flt: AuditFilter, *, limit: int = 100) -> list[AuditRecord]:
        """Up to ``limit`` records matching ``flt``, newest first."""
        a = audit_log.c
        query = select(audit_log).order_by(a.seq.desc()).limit(limit)
        if flt.event:
            query = query.where(a.event == flt.event)
        if flt.device_id:
            query = query.where(a.device_id == flt.device_id)
        if flt.decision:
            query = query.where(a.decision == flt.decision)
        if flt.since is not None:
            query = query.where(a.at >= flt.since)
        if flt.before_seq is not None:
            query = query.where(a.seq < flt.before_seq)
        with read_tx(self.engine) as conn:
            return [audit_from_row(r) for r in conn.execute(query)]

    def latest(self, event: str) -> AuditRecord | None:
        """The newest record of ``event``."""
        found = self.page(AuditFilter(event=event), limit=1)
        return found[0] if found else None

    def head(self) -> tuple[int, str] | None:
        """The chain's last sequence number and hash."""
        a = audit_log.c
        with read_tx(self.engine) as conn:
            row = conn.execute(select(a.seq, a.hash).order_by(a.seq.desc()).limit(1)).first()
        return None if row is None else (int(row.seq), str(row.hash))
