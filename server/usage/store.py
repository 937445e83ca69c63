"""Flushed usage rows: per-token request counts by minute and client networks.

Each replica adds its own deltas (``requests = requests + delta``, networks upserted), so the
rows are the sum over replicas; the totals read back after a flush are what a replica knows
of the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from server.store.access import _connection
from server.store.schema import usage_networks, usage_requests


@dataclass(frozen=True)
class UsageDeltas:
    """What one replica observed since its last flush."""

    requests: Mapping[tuple[str, int], tuple[str, int]]  # (jti, minute) -> (device, count)
    networks: Mapping[tuple[str, str], tuple[str, int, int]]  # (jti, net) -> (device, first, last)


@dataclass(frozen=True)
class UsageTotals:
    """Totals over every replica, as of a flush."""

    networks: Mapping[str, frozenset[str]]  # jti -> networks
    requests: Mapping[tuple[str, int], int]  # (jti, minute) -> requests


def _insert(engine: Engine) -> Any:
    return pg_insert if engine.dialect.name == "postgresql" else sqlite_insert


def flush_usage(
    engine: Engine, deltas: UsageDeltas, *, jtis: Sequence[str], minute: int
) -> UsageTotals:
    """Add this replica's deltas and read back the totals of ``jtis`` (one transaction)."""
    insert = _insert(engine)
    r, n = usage_requests, usage_networks
    with _connection(engine, write=True) as conn:
        if deltas.requests:
            statement = insert(r).values(
                [
                    {"jti": jti, "minute": m, "device_id": device, "requests": count}
                    for (jti, m), (device, count) in deltas.requests.items()
                ]
            )
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["jti", "minute"],
                    set_={"requests": r.c.requests + statement.excluded.requests},
                )
            )
        if deltas.networks:
            statement = insert(n).values(
                [
                    {"jti": jti, "network": net, "device_id": d, "first_seen": f, "last_seen": last}
                    for (jti, net), (d, f, last) in deltas.networks.items()
                ]
            )
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["jti", "network"],
                    set_={"last_seen": func.max(n.c.last_seen, statement.excluded.last_seen)}
                    if engine.dialect.name == "sqlite"
                    else {"last_seen": func.greatest(n.c.last_seen, statement.excluded.last_seen)},
                )
            )
        networks: dict[str, set[str]] = {}
        requests: dict[tuple[str, int], int] = {}
        if jtis:
            for jti, net in conn.execute(select(n.c.jti, n.c.network).where(n.c.jti.in_(jtis))):
                networks.setdefault(jti, set()).add(net)
            rows = conn.execute(
                select(r.c.jti, r.c.minute, r.c.requests).where(
                    r.c.jti.in_(jtis), r.c.minute >= minute - 1
                )
            )
            requests = {(jti, m): count for jti, m, count in rows}
    return UsageTotals({k: frozenset(v) for k, v in networks.items()}, requests)


def device_usage(engine: Engine, device_id: str) -> list[dict[str, Any]]:
    """What the verifier holds about a device's token use (for ``whoami``)."""
    r, n = usage_requests, usage_networks
    with _connection(engine, write=False) as conn:
        counts = conn.execute(
            select(
                r.c.jti,
                func.sum(r.c.requests),
                func.max(r.c.requests),
                func.min(r.c.minute),
                func.max(r.c.minute),
            )
            .where(r.c.device_id == device_id)
            .group_by(r.c.jti)
        ).all()
        nets = conn.execute(
            select(n.c.jti, n.c.network, n.c.first_seen, n.c.last_seen)
            .where(n.c.device_id == device_id)
            .order_by(n.c.first_seen)
        ).all()
    by_token: dict[str, dict[str, Any]] = {}
    for jti, total, peak, first, last in counts:
        by_token[jti] = {
            "token_jti": jti,
            "requests": int(total),
            "peak_requests_per_minute": int(peak),
            "first_minute": int(first) * 60,
            "last_minute": int(last) * 60,
            "client_networks": [],
        }
    for jti, network, first_seen, last_seen in nets:
        entry = by_token.setdefault(jti, {"token_jti": jti, "client_networks": []})
        entry["client_networks"].append(
            {"network": network, "first_seen": first_seen, "last_seen": last_seen}
        )
    return list(by_token.values())


def prune_usage(engine: Engine, *, before: int) -> int:
    """Delete usage older than ``before`` (seconds): the manifest's retention."""
    with _connection(engine, write=True) as conn:
        gone = conn.execute(delete(usage_requests).where(usage_requests.c.minute < before // 60))
        nets = conn.execute(delete(usage_networks).where(usage_networks.c.last_seen < before))
        return int(gone.rowcount) + int(nets.rowcount)
