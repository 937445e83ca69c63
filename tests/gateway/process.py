"""Start a real gateway program, wait until it answers on its port, stop it afterwards."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx


@contextmanager
def running_program(
    argv: Sequence[str],
    *,
    url: str,
    log: Path,
    env: dict[str, str] | None = None,
    wait_s: float = 20,
) -> Iterator[str]:
    """Run ``argv`` until the block ends; yields ``url`` once something answers there."""
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + wait_s
            while True:
                if process.poll() is not None:
                    raise AssertionError(f"{argv[0]} exited: {log.read_text()}")
                try:
                    httpx.get(url, timeout=1)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise AssertionError(
                            f"{argv[0]} did not start: {log.read_text()}"
                        ) from None
                    time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


__all__ = ["running_program"]
