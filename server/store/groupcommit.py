"""Group commit: one writer thread commits the settles queued while the previous commit was
being made durable, in one transaction and one fsync.

Callers wait until the transaction holding their own record has committed, so no caller
is answered before its record is durable, and a failed commit fails every caller in it (none
of them gets a token). Batches form on their own: nothing waits to fill one, the queue just
holds whatever arrived during the last fsync.

Two ways to wait: ``submit`` blocks a thread; ``submit_async`` awaits on the event loop, so
a request needs no thread of its own. The writer wakes each event loop once per batch
(``call_soon_threadsafe``), not once per caller.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_BATCH = 128  # settles per transaction: bounds one commit's lock hold and latency


@dataclass(slots=True)
class Pending(Generic[T]):
    """One queued request and, once committed, its result or the error that failed it.

    Exactly one of ``done`` (a lock held until the writer releases it: the cheapest one-shot
    latch for a thread) and ``future`` (resolved on ``loop``) is set."""

    request: T
    done: threading.Lock | None = None
    future: asyncio.Future[None] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    error: BaseException | None = None


def _resolve(batch: list[Pending[T]]) -> None:
    """On the event loop: wake every awaiting caller of one committed batch."""
    for pending in batch:
        future = pending.future
        if future is not None and not future.done():  # a cancelled caller went away
            future.set_result(None)


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
        """Queue ``request`` and block until its transaction committed (or failed: raise)."""
        latch = threading.Lock()
        latch.acquire()
        pending = Pending(request, done=latch)
        self._queue.put(pending)
        latch.acquire()
        if pending.error is not None:
            raise pending.error
        return pending

    async def submit_async(self, request: T) -> Pending[T]:
        """Queue ``request`` and await, on the running event loop, until its transaction
        committed (or failed: raise). Cancelling the caller does not withdraw the request:
        once queued it is committed, like a blocked thread's."""
        loop = asyncio.get_running_loop()
        pending = Pending(request, future=loop.create_future(), loop=loop)
        self._queue.put(pending)
        assert pending.future is not None
        await pending.future
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
            self._wake(batch)

    @staticmethod
    def _wake(batch: list[Pending[T]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Pending[T]]] = {}
        for pending in batch:
            if pending.done is not None:
                pending.done.release()
            elif pending.loop is not None:
                by_loop.setdefault(pending.loop, []).append(pending)
        for loop, waiting in by_loop.items():
            with suppress(RuntimeError):  # that loop has closed: nobody is waiting any more
                loop.call_soon_threadsafe(_resolve, waiting)
