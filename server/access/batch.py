"""Database work for the hot path, batched on one dedicated thread per concern.

The event loop never blocks on the database and never hops through the shared thread pool:
a request enqueues its item and awaits a future. While one batch runs on the thread, new
items queue; when it finishes, everything queued runs as the next batch. An item therefore
always lands in a batch that *started after it was submitted*, which is what makes a cached
read followed by an epoch check as fresh as a direct read (see ``rowcache``).

The thread is a plain one fed by a queue, and hands a batch's results back with one
``call_soon_threadsafe``: an executor would add a concurrent future, a wrapping asyncio
future and two more callbacks per batch.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from server.errors import UnavailableError

Item = TypeVar("Item")
Result = TypeVar("Result")

BatchFunction = Callable[[Sequence[Item]], Sequence[Result]]
"""Runs on the dedicated thread: one result per item, in order."""


class Batcher(Generic[Item, Result]):
    """Coalesces concurrent calls into one call of ``function`` on a dedicated thread."""

    def __init__(self, function: BatchFunction[Item, Result], *, name: str) -> None:
        self._function = function
        self._name = name
        self._queued: list[tuple[Item, asyncio.Future[Result]]] = []
        self._running = False
        self._jobs: queue.SimpleQueue[
            tuple[asyncio.AbstractEventLoop, list[tuple[Item, asyncio.Future[Result]]]] | None
        ] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False

    async def submit(self, item: Item) -> Result:
        """The result for ``item`` from a batch started after this call."""
        if self._closed:
            raise UnavailableError("the verifier is shutting down; retry shortly", retry_after_s=1)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._queued.append((item, future))
        if not self._running:
            self._start(loop)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._queued = self._queued, []
        self._running = True
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
            self._thread.start()
        self._jobs.put((loop, batch))

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, batch = job
            results: Sequence[Result] = ()
            error: BaseException | None = None
            try:
                results = self._function([item for item, _ in batch])
            except BaseException as exc:  # handed to every caller of the batch
                error = exc
            try:
                loop.call_soon_threadsafe(self._finish, loop, batch, results, error)
            except RuntimeError:
                return  # the loop is closed: nobody waits any more

    def _finish(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[Item, asyncio.Future[Result]]],
        results: Sequence[Result],
        error: BaseException | None,
    ) -> None:
        self._running = False
        for index, (_, future) in enumerate(batch):
            if future.done():
                continue  # the caller went away (client disconnected)
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(results[index])
        if self._queued and not self._closed:
            self._start(loop)

    def close(self) -> None:
        """Stop the thread after the running batch; later calls are cancelled."""
        self._closed = True
        for _, future in self._queued:
            if not future.done():
                future.cancel()
        self._queued = []
        self._jobs.put(None)
