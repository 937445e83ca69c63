"""Group commit: one writer thread commits the settles queued while the previous commit was
being made durable, in one transaction and one fsync.

Callers block until the transaction holding their own record has committed, so no caller
is answered before its record is durable, and a failed commit fails every caller in it (none
of them gets a token). Batches form on their own: nothing waits to fill one, the queue just
holds whatever arrived during the last fsync.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_BATCH = 128  # settles per transaction: bounds one commit's lock hold and latency


def _held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass
class Pending(Generic[T]):
    """One queued request and, once committed, its result or the error that failed it.

    ``done`` is a lock held until the writer releases it: the cheapest one-shot latch."""

    request: T
    done: threading.Lock = field(default_factory=_held_lock)
    error: BaseException | None = None


class GroupCommitter(Generic[T]):
    """Runs ``commit(batch)`` in one writer thread; ``submit`` waits for its batch."""

    def __init__(
        self, commit: Callable[[list[Pending[T]]], None], *, max_batch: int = MAX_BATCH
    ) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Pending[T] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="envattest-commit", daemon=True)
        self._thread.start()

    def submit(self, request: T) -> Pending[T]:
        """Queue ``request`` and wait until its transaction committed (or failed: raise)."""
        pending = Pending(request)
        self._queue.put(pending)
        pending.done.acquire()
        if pending.error is not None:
            raise pending.error
        return pending

    def close(self) -> None:
        """Stop the writer after the requests already queued."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # close after this batch
                    break
                batch.append(more)
            try:
                self._commit(batch)
            except BaseException as exc:  # every caller of the failed batch learns why
                for pending in batch:
                    pending.error = exc
            for pending in batch:
                pending.done.release()
