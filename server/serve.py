"""``serve``: uvicorn with JSON or text logs, SIGHUP reload, and the maintenance timers
(expired nonces, signed audit checkpoints, optional retention)."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from server.alerts.config import AlertSettings, parse_alert_settings
from server.alerts.worker import Projector, build_follower, start_metrics_listener
from server.config import ServerConfig
from server.logs import LogFormat, configure_logging
from server.maintenance import Maintenance, maintenance_tasks
from server.runtime import Runtime

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("envattest.server")
_WORKER_ENV = "ENVATTEST_SERVE_WORKER"


@dataclass(frozen=True)
class ServeOptions:
    """How to listen and log."""

    host: str = "127.0.0.1"
    port: int = 8080
    tls_cert: str | None = None
    tls_key: str | None = None
    log_level: str = "info"
    log_format: LogFormat = "text"
    purge_interval_s: int | None = None
    workers: int = 1


def serve(config: ServerConfig, options: ServeOptions) -> None:
    """Build the runtime (raises on a bad policy or schema) and serve until SIGTERM/SIGINT.

    SIGINT (Ctrl-C) and SIGTERM stop the server gracefully: in-flight requests finish, the
    timers write a last checkpoint, and this returns normally. With ``workers`` > 1, worker
    processes share the socket; this process supervises them, forwards SIGHUP (each worker
    reloads in place) and runs the timers once for all."""
    configure_logging(options.log_format, options.log_level)
    alerts = parse_alert_settings(config.alerts, config.data_dir)
    # the fleet projection in a process of its own, started while no thread runs here
    projector = Projector(config.resolved_database_url, alerts)
    projector.start()
    try:
        _serve(config, options, alerts, projector)
    finally:
        projector.stop()


def _serve(
    config: ServerConfig, options: ServeOptions, alerts: AlertSettings, projector: Projector
) -> None:
    import uvicorn

    from server.app import build_runtime, create_app

    runtime = build_runtime(config)
    # one follower (alert delivery, gauges) per serve, in the supervising process
    follower = build_follower(
        runtime.store.engine,
        alerts,
        runtime.metrics,
        project=False,
        watch=projector.restart_if_gone,
    )
    metrics_server = start_metrics_listener(config.metrics_listen, runtime.metrics)
    settings: dict[str, Any] = {
        "host": options.host,
        "port": options.port,
        "log_config": None,
        "log_level": options.log_level,
        "ssl_certfile": options.tls_cert,
        "ssl_keyfile": options.tls_key,
        "access_log": False,
        "proxy_headers": False,  # X-Forwarded-For: only from trusted_proxies (server.limits)
    }
    timers = Maintenance(maintenance_tasks(runtime, retention_interval_s=options.purge_interval_s))
    previous = signal.signal(signal.SIGHUP, _reload_on_hup(runtime))
    timers.start()
    follower.start()
    log.info(
        "envattest verifier on %s:%d, policy %s, %d worker process(es)",
        options.host,
        options.port,
        runtime.live.policy.version,
        options.workers,
    )
    try:
        if options.workers > 1:
            os.environ[_WORKER_ENV] = json.dumps(
                {
                    "data_dir": str(config.data_dir),
                    "tpm_roots": config.tpm_roots,
                    "metrics_listen": config.metrics_listen,
                    "log_format": options.log_format,
                    "log_level": options.log_level,
                }
            )
            uv_config = uvicorn.Config(
                "server.serve:worker_app", factory=True, workers=options.workers, **settings
            )
            _supervisor_class()(uv_config, sockets=[uv_config.bind_socket()]).run()
        else:
            app = create_app(runtime)
            freeze_startup_heap()
            run_until_stopped(uvicorn.Server(uvicorn.Config(app, **settings)))
    finally:
        follower.stop()
        if metrics_server is not None:
            metrics_server.shutdown()
        timers.stop()
        signal.signal(signal.SIGHUP, previous)
        runtime.store.close()
    log.info("envattest verifier stopped")


def _reload_on_hup(runtime: Runtime) -> Callable[[int, FrameType | None], None]:
    def on_sighup(_signum: int, _frame: FrameType | None) -> None:
        # reload off the signal handler: file reads and a database write must not run here
        threading.Thread(target=runtime.reload_or_keep, name="envattest-reload").start()

    return on_sighup


def worker_app() -> Any:
    """The app of one worker process (``serve --workers``), from the supervisor's settings."""
    from server.app import build_runtime, create_app
    from server.config import load_config

    spec = json.loads(os.environ[_WORKER_ENV])
    configure_logging(spec["log_format"], spec["log_level"])
    logging.getLogger("uvicorn.access").propagate = False  # as access_log=False does
    config = load_config(
        Path(spec["data_dir"]),
        tpm_roots=spec["tpm_roots"] or None,
        metrics_listen=spec.get("metrics_listen") or None,
    )
    runtime = build_runtime(config)
    signal.signal(signal.SIGHUP, _reload_on_hup(runtime))
    app = create_app(runtime)
    freeze_startup_heap()
    return app


def freeze_startup_heap() -> None:
    """Take what startup built (routes, schemas, the policy, table metadata) out of the
    cyclic garbage collector's view (``gc.freeze``): a full collection then walks only what
    requests allocate, so its pauses stay short under load instead of adding to the tail
    latency of whatever requests it interrupts."""
    gc.collect()
    gc.freeze()


def _supervisor_class() -> type[Any]:
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        """uvicorn's supervisor, but SIGHUP reloads each worker in place (a bad policy is
        refused and the old one kept) instead of restarting it."""

        def handle_hup(self) -> None:
            log.info("SIGHUP: reloading %d workers", len(self.processes))
            for process in self.processes:
                if process.pid is not None:
                    os.kill(process.pid, signal.SIGHUP)

    return Supervisor


def run_until_stopped(server: uvicorn.Server) -> None:
    """``server.run()``; the Ctrl-C that uvicorn re-raises after its graceful shutdown ends
    the run instead of escaping as a traceback."""
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
