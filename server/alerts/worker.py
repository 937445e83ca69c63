"""The background work of ``serve`` and ``console``: follows the audit log into the fleet
projection (raising alerts), delivers alerts, and refreshes the fleet gauges.

``console`` runs all of it in one thread (``AuditFollower``). ``serve`` runs the projection,
the CPU-heavy part (decoding and applying every record), in a process of its own
(``Projector``), so it never competes with the hot paths for the serving process's
interpreter lock; delivery and gauges stay in a thread of ``serve`` beside the metrics."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
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
PROJECTOR_NAME = "envattest-proj"  # as ps and top show the projector (Linux: 15 bytes at most)
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
        project: bool = True,
        watch: Callable[[], None] | None = None,
    ) -> None:
        self.projection = projection
        self.project = project  # False: a Projector applies the records; this reads its lag
        self.watch = watch  # called first in every round (serve: restart a dead projector)
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
        if self.watch is not None:
            self.watch()
        if self.project and not catch_up(self.projection, self.batch, self._clock, self._stop):
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


def catch_up(
    projection: FleetProjection, batch: int, clock: Callable[[], float], stop: threading.Event
) -> bool:
    """Apply everything new in batches of ``batch``; False if ``stop`` was set meanwhile."""
    # a short batch means the projection is caught up: the rest waits for the next round
    while projection.catch_up(limit=batch, now=int(clock())) >= batch:
        if stop.is_set():
            return False
    return True


def build_follower(
    engine: Engine,
    settings: AlertSettings,
    metrics: Metrics,
    *,
    project: bool = True,
    watch: Callable[[], None] | None = None,
) -> AuditFollower:
    """A follower for a database engine with the alert settings of ``server.toml``;
    ``project=False`` when a ``Projector`` applies the records, ``watch`` its keeper."""
    store = AlertStore(engine)
    return AuditFollower(
        projection=FleetProjection(
            engine, alert_targets=lambda: settings.targets, allow_run=settings.allow_run
        ),
        sender=AlertSender(store, settings, client=httpx.Client(), metrics=metrics),
        queries=FleetQueries(engine),
        metrics=metrics,
        project=project,
        watch=watch,
    )


class Projector:
    """The fleet projection in a child process of ``serve``: once a second it applies every
    new audit record (from all processes and replicas) and records the alerts they raise,
    which the parent's follower delivers. It stops when told to, and by itself within a
    second of its parent's death (even a ``kill -9``), so it never outlives the server.

    Records are applied in transactions that check the projection's cursor, so a second
    projector (another replica's, or a console's) only repeats reads, never an update."""

    def __init__(self, database_url: str, settings: AlertSettings, *, interval_s: float = 1.0):
        self.database_url = database_url
        self.targets = settings.targets
        self.allow_run = settings.allow_run
        self.interval_s = interval_s
        self._process: multiprocessing.process.BaseProcess | None = None
        self._lock = threading.Lock()  # start and stop from serve, restarts from its follower

    def start(self) -> None:
        """Start the projector process."""
        with self._lock:
            self._start()

    def restart_if_gone(self) -> None:
        """Start a new projector if the running one exited (it only does when killed)."""
        with self._lock:
            process = self._process
            if process is None or process.is_alive():
                return
            log.warning(
                "fleet projection process exited with code %s; starting a new one",
                process.exitcode,
            )
            self._start()

    def _start(self) -> None:
        """Start the process; from a process that runs no thread yet, where ``fork`` is
        safe (elsewhere the child starts a fresh interpreter)."""
        fork = "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1
        context = (
            multiprocessing.get_context("fork") if fork else multiprocessing.get_context("spawn")
        )
        self._process = context.Process(
            target=project_forever,
            args=(self.database_url, self.targets, self.allow_run, os.getpid(), self.interval_s),
            name="envattest-projector",
            daemon=True,
        )
        self._process.start()

    def stop(self) -> None:
        """Stop after the current round (SIGTERM), or kill it after 15 s."""
        with self._lock:
            process, self._process = self._process, None
        if process is None or not process.is_alive():
            return
        process.terminate()
        process.join(timeout=15)
        if process.is_alive():
            process.kill()
            process.join()


def project_forever(
    database_url: str, targets: tuple[str, ...], allow_run: int, parent: int, interval_s: float
) -> None:
    """The projector process: rounds until SIGTERM or until ``parent`` is gone."""
    from server.store.engine import make_engine

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    if hasattr(signal, "SIGHUP"):  # a reload (or a terminal's hangup) is for the parent
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with contextlib.suppress(OSError):  # Linux names a process by this file; elsewhere skip
        Path("/proc/self/comm").write_text(PROJECTOR_NAME)
    engine = make_engine(database_url)
    projection = FleetProjection(engine, alert_targets=lambda: targets, allow_run=allow_run)
    while not stop.is_set() and os.getppid() == parent:
        try:
            catch_up(projection, FOLLOW_BATCH, time.time, stop)
        except ServerError as exc:
            log.warning("fleet projection: %s; retrying", exc)
        except Exception:  # the projector must outlive any one bad round
            log.exception("fleet projection round failed; retrying")
        stop.wait(interval_s)
    engine.dispose()


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
