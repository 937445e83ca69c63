"""The body deadline in process: a stalled read ends in 408 within a tick of the deadline,
only the watchdog's own cancellations become 408, and every event loop gets its watchdog."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message, Receive

from server.errors import PayloadTooLargeError, RequestTimeoutError
from server.limits import BodyDeadlines


async def _stalled() -> Message:
    await asyncio.sleep(60)
    raise AssertionError("unreachable")


def _chunks(*messages: Message) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        return pending.pop(0)

    return receive


async def _timed_read(deadlines: BodyDeadlines) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(RequestTimeoutError, match=r"within 0\.2 s"):
        await deadlines.read(_stalled, max_bytes=10)
    return loop.time() - start


def test_a_stalled_read_is_a_408_at_the_deadline() -> None:
    deadlines = BodyDeadlines(0.2)
    elapsed = asyncio.run(_timed_read(deadlines))
    assert 0.2 <= elapsed < 0.2 + deadlines.tick_s + 0.3


def test_every_event_loop_gets_its_watchdog() -> None:
    deadlines = BodyDeadlines(0.2)
    for _ in range(2):  # a second loop after the first one closed
        assert asyncio.run(_timed_read(deadlines)) < 1.0


def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    async def main() -> None:
        task = asyncio.create_task(BodyDeadlines(5).read(_stalled, max_bytes=10))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_reads_within_the_deadline_are_whole_bodies_or_none() -> None:
    async def main() -> None:
        deadlines = BodyDeadlines(5)
        parts = _chunks(
            {"type": "http.request", "body": b"ab", "more_body": True},
            {"type": "http.request", "body": b"cd", "more_body": False},
        )
        assert await deadlines.read(parts, max_bytes=4) == b"abcd"
        gone = _chunks({"type": "http.disconnect"})
        assert await deadlines.read(gone, max_bytes=4) is None
        big = _chunks(
            {"type": "http.request", "body": b"abc", "more_body": True},
            {"type": "http.request", "body": b"de", "more_body": False},
        )
        with pytest.raises(PayloadTooLargeError, match="larger than 4 bytes"):
            await deadlines.read(big, max_bytes=4)

    asyncio.run(main())
