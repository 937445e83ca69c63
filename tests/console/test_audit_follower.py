"""The audit follower works on an interval: one round applies everything new in full
batches and stops at the first short one, instead of chasing the log record by record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.alerts.worker import AuditFollower
from server.metrics import Metrics


@dataclass
class _Projection:
    backlog: int
    calls: list[int] = field(default_factory=list)

    def catch_up(self, *, limit: int = 500, now: int) -> int:
        applied = min(limit, self.backlog)
        self.backlog -= applied
        self.calls.append(applied)
        return applied

    def lag(self) -> int:
        return self.backlog


class _Sender:
    runs = 0

    def run_once(self) -> None:
        self.runs += 1


def _follower(projection: _Projection, batch: int) -> AuditFollower:
    follower = AuditFollower(
        projection=projection,  # type: ignore[arg-type]
        sender=_Sender(),  # type: ignore[arg-type]
        queries=Any,  # type: ignore[arg-type]
        metrics=Metrics(),
        batch=batch,
    )
    follower._gauges_at = float("inf")  # gauges are not what this test is about
    return follower


def test_a_round_applies_full_batches_and_stops_at_a_short_one() -> None:
    projection = _Projection(backlog=2_503)
    _follower(projection, batch=1_000).tick()
    assert projection.calls == [1_000, 1_000, 503]
    assert projection.backlog == 0


def test_a_round_under_steady_load_is_one_batch() -> None:
    projection = _Projection(backlog=40)  # what arrived since the last round
    follower = _follower(projection, batch=1_000)
    follower.tick()
    projection.backlog = 40
    follower.tick()
    assert projection.calls == [40, 40]  # one transaction per round, not one per few records
