"""The background worker of ``serve`` and ``console``: follows the audit log into the fleet
projection (raising alerts), delivers alerts, and refreshes the fleet gauges."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from wsgiref.simple_server import WSGIServer

import httpx
from prometheus_client import start_http_server
from sqlalchemy import Engine

from server.alerts.config import AlertSettings
from server.alerts.sender import AlertSender
from server.errors import ConfigError, ServerError
from server.metrics import Metrics
from server.store.alerts import AlertStore
from server.store.fleet import FleetProjection
from server.store.fleet_queries import FleetQueries

log = logging.getLogger("envattest.alerts")
GAUGE_EVERY_S = 15.0
FOLLOW_BATCH = 1000  # records per projection transaction


class AuditFollower:
    """One thread; each tick catches up the projection, then sends due alerts.

    It follows on an interval, not record by record: a tick applies everything new in
    batches of ``batch`` records and then sleeps ``interval_s``, so under load the cost of a
    batch (loading and writing each device's state once) is shared by a second's worth of
    attestations instead of being paid for each few."""

    def __init__(
        self,
        *,
        projection: FleetProjection,
        sender: AlertSender,
        queries: FleetQueries,
        metrics: Metrics,
        interval_s: float = 1.0,
        batch: int = FOLLOW_BATCH,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.projection = projection
        self.sender = sender
        self.queries = queries
        self.metrics = metrics
        self.interval_s = interval_s
        self.batch = batch
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="envattest-follower", daemon=True)
        self._gauges_at = 0.0

    def tick(self) -> None:
        """One round: project everything new, deliver what is due, refresh gauges."""
        # a short batch means the follower is caught up: the rest waits for the next tick
        while self.projection.catch_up(limit=self.batch, now=int(self._clock())) >= self.batch:
            if self._stop.is_set():
                return
        self.sender.run_once()
        if time.monotonic() - self._gauges_at >= GAUGE_EVERY_S:
            self.refresh_gauges()

    def refresh_gauges(self) -> None:
        """Devices by key class and state, alert backlog, projection lag."""
        self._gauges_at = time.monotonic()
        overview = self.queries.overview(fresh_since=0, days_since=int(self._clock()))
        self.metrics.devices.clear()
        for (key_class, state), n in overview.by_key_class.items():
            self.metrics.devices.labels(key_class, state).set(n)
        states = self.sender.store.states()
        for state in ("pending", "delivered", "failed"):
            self.metrics.alert_backlog.labels(state).set(states.get(state, 0))
        self.metrics.projection_lag.set(self.projection.lag())

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current round."""
        self._stop.set()
        self._thread.join(timeout=15)
        self.sender.client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except ServerError as exc:
                log.warning("audit follower: %s; retrying", exc)
            except Exception:  # the worker must outlive any one bad round
                log.exception("audit follower round failed; retrying")
            self._stop.wait(self.interval_s)


def build_follower(engine: Engine, settings: AlertSettings, metrics: Metrics) -> AuditFollower:
    """A follower for a database engine with the alert settings of ``server.toml``."""
    store = AlertStore(engine)
    return AuditFollower(
        projection=FleetProjection(
            engine, alert_targets=lambda: settings.targets, allow_run=settings.allow_run
        ),
        sender=AlertSender(store, settings, client=httpx.Client(), metrics=metrics),
        queries=FleetQueries(engine),
        metrics=metrics,
    )


def start_metrics_listener(listen: str, metrics: Metrics) -> WSGIServer | None:
    """Serve ``/metrics`` on ``host:port`` (``metrics_listen``), or nothing when empty."""
    if not listen:
        return None
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(f"metrics_listen {listen!r}: write host:port, e.g. 127.0.0.1:9464")
    server, _thread = start_http_server(int(port), host.strip("[]"), registry=metrics.registry)
    log.info("metrics on http://%s/metrics", listen)
    return server
