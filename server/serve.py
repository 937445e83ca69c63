"""``serve``: uvicorn with JSON or text logs, SIGHUP reload, and the optional purge timer."""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from types import FrameType

from server.config import ServerConfig
from server.errors import ServerError
from server.logs import LogFormat, configure_logging
from server.retention import purge_expired
from server.runtime import Runtime

log = logging.getLogger("envattest.server")


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


class PurgeTimer:
    """Runs retention every ``interval_s`` in a background thread until stopped."""

    def __init__(self, runtime: Runtime, interval_s: int) -> None:
        self.runtime = runtime
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="envattest-purge", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop and wait for it."""
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                report = purge_expired(
                    self.runtime.store,
                    self.runtime.manifest,
                    now=int(time.time()),
                    audit_empty=False,
                    trigger="timer",
                )
            except ServerError as exc:
                log.error("purge failed, will retry at the next interval: %s", exc)
                continue
            log.info(
                "purge: %d records purged, %d nonces deleted",
                report.records_purged,
                report.nonces_deleted,
                extra={"fields": {"records_purged": report.records_purged}},
            )


def serve(config: ServerConfig, options: ServeOptions) -> None:
    """Build the runtime (raises on a bad policy or schema) and serve until SIGTERM/SIGINT."""
    import uvicorn

    from server.app import build_runtime, create_app

    configure_logging(options.log_format, options.log_level)
    runtime = build_runtime(config)
    app = create_app(runtime)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=options.host,
            port=options.port,
            log_config=None,
            log_level=options.log_level,
            ssl_certfile=options.tls_cert,
            ssl_keyfile=options.tls_key,
            access_log=False,
            proxy_headers=False,  # X-Forwarded-For: only from trusted_proxies (server.limits)
        )
    )

    def on_sighup(_signum: int, _frame: FrameType | None) -> None:
        # reload off the signal handler: file reads and a database write must not run here
        threading.Thread(target=runtime.reload_or_keep, name="envattest-reload").start()

    previous = signal.signal(signal.SIGHUP, on_sighup)
    timer = PurgeTimer(runtime, options.purge_interval_s) if options.purge_interval_s else None
    if timer is not None:
        timer.start()
    log.info(
        "envattest verifier on %s:%d, policy %s",
        options.host,
        options.port,
        runtime.live.policy.version,
    )
    try:
        server.run()
    finally:
        if timer is not None:
            timer.stop()
        signal.signal(signal.SIGHUP, previous)
        runtime.store.engine.dispose()
