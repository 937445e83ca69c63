"""Run the verifier under uvicorn with N workers, for benchmarks.

``envattest-server serve`` has no ``--workers`` yet, and uvicorn needs an import string (a
factory) to start more than one worker process, so this module is that factory:

    python -m bench._serve --data-dir DIR --port PORT --workers 2

Settings match ``envattest-server serve`` (no access log); ``--http``/``--loop`` let a
benchmark try uvicorn's optional C parsers and event loop when they are installed.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

DATA_DIR_ENV = "ENVATTEST_BENCH_DATA_DIR"


def create_app() -> Any:
    """The verifier app for the data directory named in ``ENVATTEST_BENCH_DATA_DIR``."""
    from server.app import build_runtime, create_app
    from server.config import load_config

    return create_app(build_runtime(load_config(Path(os.environ[DATA_DIR_ENV]))))


def main() -> None:
    """Parse arguments and run uvicorn until terminated."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="bench._serve")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--http", default="auto", choices=["auto", "h11", "httptools"])
    parser.add_argument("--loop", default="auto", choices=["auto", "asyncio", "uvloop"])
    args = parser.parse_args()
    os.environ[DATA_DIR_ENV] = str(args.data_dir.resolve())
    uvicorn.run(
        "bench._serve:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        http=args.http,
        loop=args.loop,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
