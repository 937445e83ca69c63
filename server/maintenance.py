"""Timers ``serve`` runs in one background thread: delete expired nonces, sign audit
checkpoints (at start, on a schedule and at stop), and optionally apply retention.

Each task runs at its own interval; a failing task is logged and retried at its next turn,
never stopping the server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from server.audit.anchor import AuditAnchor
from server.errors import ServerError
from server.nonces import purge_spent_nonces
from server.retention import purge_expired
from server.runtime import Runtime

log = logging.getLogger("envattest.server")


@dataclass(frozen=True)
class Task:
    """Work to repeat every ``interval_s``; ``at_start``/``at_stop`` also run it then."""

    name: str
    interval_s: int
    run: Callable[[], str]
    at_start: bool = False
    at_stop: bool = False


class Maintenance:
    """Runs ``tasks`` in one daemon thread until ``stop``."""

    def __init__(self, tasks: list[Task], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.tasks = [t for t in tasks if t.interval_s > 0]
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="envattest-timers", daemon=True)

    def start(self) -> None:
        """Run the ``at_start`` tasks, then start the thread."""
        for task in self.tasks:
            if task.at_start:
                self._run(task)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, then run the ``at_stop`` tasks."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        for task in self.tasks:
            if task.at_stop:
                self._run(task)

    def _loop(self) -> None:
        due = {t.name: self._clock() + t.interval_s for t in self.tasks}
        while self.tasks:
            wait = max(0.0, min(due.values()) - self._clock())
            if self._stop.wait(wait):
                return
            for task in self.tasks:
                if due[task.name] <= self._clock():
                    self._run(task)
                    due[task.name] = self._clock() + task.interval_s

    @staticmethod
    def _run(task: Task) -> None:
        try:
            log.info("%s: %s", task.name, task.run())
        except (ServerError, OSError) as exc:
            log.error("%s failed, will retry at the next interval: %s", task.name, exc)


def maintenance_tasks(runtime: Runtime, *, retention_interval_s: int | None) -> list[Task]:
    """The timers of one ``serve`` process, from its configuration."""
    config = runtime.config
    store = runtime.store
    anchor = AuditAnchor(config.audit_checkpoint_key_path, config.audit_witness_path)

    def purge_nonces() -> str:
        return f"{purge_spent_nonces(store, now=int(time.time()))} expired nonces deleted"

    def checkpoint() -> str:
        made = anchor.checkpoint(store, now=int(time.time()))
        return f"signed {made.count} records, head {made.head_hash[:16]}"

    def retention() -> str:
        report = purge_expired(
            store, runtime.manifest, now=int(time.time()), audit_empty=False, trigger="timer"
        )
        return f"{report.records_purged} records purged, {report.nonces_deleted} nonces deleted"

    tasks = [
        Task("nonce purge", config.nonce_purge_interval_s, purge_nonces),
        Task(
            "audit checkpoint",
            config.audit_checkpoint_interval_s,
            checkpoint,
            at_start=True,
            at_stop=True,
        ),
    ]
    if retention_interval_s:
        tasks.append(Task("retention", retention_interval_s, retention))
    return tasks
