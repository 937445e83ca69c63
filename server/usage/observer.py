"""Usage aggregated in memory per process and flushed to the database on an interval.

Forward auth calls ``observe`` (no I/O). Every ``flush_interval_s`` the process adds its deltas
to the shared rows and reads back the totals of the tokens it is tracking. What two replicas
see: each knows its own requests and networks at once and the other's as of its last flush,
so a token spread over replicas is caught at most one interval late, and a per-minute rate is
summed over replicas with the same delay.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from server.policy.usage import ObservedUsage
from server.usage.store import UsageDeltas, UsageTotals, flush_usage

MAX_NETWORKS_TRACKED = 1_024  # per token; far above any sensible limit


@dataclass
class _Pending:
    requests: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    networks: dict[tuple[str, str], tuple[str, int, int]] = field(default_factory=dict)


class UsageObserver:
    """Per-token request counts by minute and client networks, for one process."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock
        self._pending = _Pending()
        self._flushing = _Pending()
        self._totals = UsageTotals({}, {})
        self._seen: dict[str, set[str]] = {}  # jti -> networks this process saw
        self._expires: dict[str, int] = {}  # jti -> token exp, to stop tracking it

    def observe(self, *, device_id: str, jti: str, exp: int, network: str | None) -> ObservedUsage:
        """Count one request; the usage so far across replicas (as of the last flush)."""
        now = int(self._clock())
        minute = now // 60
        self._expires[jti] = exp
        key = (jti, minute)
        _, count = self._pending.requests.get(key, (device_id, 0))
        self._pending.requests[key] = (device_id, count + 1)
        seen = self._seen.setdefault(jti, set())
        if network is not None and network not in seen and len(seen) < MAX_NETWORKS_TRACKED:
            seen.add(network)
        if network is not None:
            first, _ = self._pending.networks.get((jti, network), (device_id, now, now))[1:]
            self._pending.networks[(jti, network)] = (device_id, first, now)
        networks = len(seen | self._totals.networks.get(jti, frozenset()))
        requests = (
            self._totals.requests.get(key, 0)
            + self._flushing.requests.get(key, ("", 0))[1]
            + self._pending.requests[key][1]
        )
        return ObservedUsage(networks=networks, requests_this_minute=requests)

    def begin_flush(self) -> tuple[UsageDeltas, list[str], int]:
        """Hand over the deltas to write (on the event loop, where ``observe`` runs)."""
        now = int(self._clock())
        for jti in [j for j, exp in self._expires.items() if exp < now]:
            del self._expires[jti]
            self._seen.pop(jti, None)
        self._flushing, self._pending = self._pending, _Pending()
        deltas = UsageDeltas(dict(self._flushing.requests), dict(self._flushing.networks))
        return deltas, list(self._expires), now // 60

    def finish_flush(self, totals: UsageTotals) -> None:
        """The deltas are written; ``totals`` now include them."""
        self._totals, self._flushing = totals, _Pending()

    def abort_flush(self) -> None:
        """The write failed: keep the deltas for the next flush."""
        for key, (device, count) in self._flushing.requests.items():
            _, newer = self._pending.requests.get(key, (device, 0))
            self._pending.requests[key] = (device, count + newer)
        for net_key, value in self._flushing.networks.items():
            self._pending.networks.setdefault(net_key, value)
        self._flushing = _Pending()

    def write(self, deltas: UsageDeltas, jtis: list[str], minute: int) -> UsageTotals:
        """The blocking part of a flush (on a background thread)."""
        return flush_usage(self._engine, deltas, jtis=jtis, minute=minute)
