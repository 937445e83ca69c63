"""``serve``: uvicorn with JSON or text logs, SIGHUP reload, and the maintenance timers
(expired nonces, signed audit checkpoints, optional retention)."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

from server.config import ServerConfig
from server.logs import LogFormat, configure_logging
from server.maintenance import Maintenance, maintenance_tasks

if TYPE_CHECKING:
    import uvicorn

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


def serve(config: ServerConfig, options: ServeOptions) -> None:
    """Build the runtime (raises on a bad policy or schema) and serve until SIGTERM/SIGINT.

    SIGINT (Ctrl-C) and SIGTERM stop the server gracefully: in-flight requests finish, the
    timers write a last checkpoint, and this returns normally."""
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
        )
    )

    def on_sighup(_signum: int, _frame: FrameType | None) -> None:
        # reload off the signal handler: file reads and a database write must not run here
        threading.Thread(target=runtime.reload_or_keep, name="envattest-reload").start()

    previous = signal.signal(signal.SIGHUP, on_sighup)
    timers = Maintenance(maintenance_tasks(runtime, retention_interval_s=options.purge_interval_s))
    timers.start()
    log.info(
        "envattest verifier on %s:%d, policy %s",
        options.host,
        options.port,
        runtime.live.policy.version,
    )
    try:
        run_until_stopped(server)
    finally:
        timers.stop()
        signal.signal(signal.SIGHUP, previous)
        runtime.store.engine.dispose()
    log.info("envattest verifier stopped")


def run_until_stopped(server: uvicorn.Server) -> None:
    """``server.run()``; the Ctrl-C that uvicorn re-raises after its graceful shutdown ends
    the run instead of escaping as a traceback."""
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
