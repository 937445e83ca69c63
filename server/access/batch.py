"""Database work for the hot path, batched on one dedicated thread per concern.

The event loop never blocks on the database and never hops through the shared thread pool:
a request enqueues its item and awaits a future. While one batch runs on the thread, new
items queue; when it finishes, everything queued runs as the next batch. An item therefore
always lands in a batch that *started after it was submitted*, which is what makes a cached
read followed by an epoch check as fresh as a direct read (see ``rowcache``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

BatchFunction = Callable[[Sequence[Item]], Sequence[Result]]
"""Runs on the dedicated thread: one result per item, in order."""


class Batcher(Generic[Item, Result]):
    """Coalesces concurrent calls into one call of ``function`` on a dedicated thread."""

    def __init__(self, function: BatchFunction[Item, Result], *, name: str) -> None:
        self._function = function
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._queued: list[tuple[Item, asyncio.Future[Result]]] = []
        self._running = False

    async def submit(self, item: Item) -> Result:
        """The result for ``item`` from a batch started after this call."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._queued.append((item, future))
        if not self._running:
            self._start(loop)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._queued = self._queued, []
        self._running = True
        items = [item for item, _ in batch]
        done = loop.run_in_executor(self._executor, self._function, items)
        done.add_done_callback(lambda outcome: self._finish(loop, batch, outcome))

    def _finish(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[Item, asyncio.Future[Result]]],
        outcome: asyncio.Future[Sequence[Result]],
    ) -> None:
        self._running = False
        error: BaseException | None = (
            asyncio.CancelledError("the verifier is shutting down")
            if outcome.cancelled()
            else outcome.exception()
        )
        results = outcome.result() if error is None else ()
        for index, (_, future) in enumerate(batch):
            if future.done():
                continue  # the caller went away (client disconnected)
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(results[index])
        if self._queued:
            self._start(loop)

    def close(self) -> None:
        """Stop the thread after the running batch."""
        self._executor.shutdown(wait=False, cancel_futures=True)
