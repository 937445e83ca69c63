"""What the edge layer (server/edge.py) costs per request, in process, without sockets.

    .venv/bin/python bench/edge.py --seconds 4

The layer wraps a minimal ASGI application that answers at once; the same application alone
is the same-run baseline. Two requests: ``GET /healthz`` (no body, not rate limited) and
``POST /v1/challenge`` with a small JSON body (address bucket, body read within the deadline
and replayed). Rounds alternate and the best round of each counts, which keeps a busy machine
from deciding the figure. Prints microseconds per request, the layer's own cost and the
ratio; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.edge import EdgeLayer
from server.limits import ClientAddresses
from server.metrics import Metrics
from server.ratelimit import RateLimits, TokenBucketLimiter

ROUNDS = 5
BODY = b'{"device_id": "dev_0123456789abcdef"}'
REQUESTS = {
    "GET /healthz": ("GET", "/healthz", b""),
    "POST /v1/challenge": ("POST", "/v1/challenge", BODY),
}


async def minimal_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the body, answers 200: the work a route does, minus the route."""
    if scope["method"] == "POST":
        await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def with_edge(app: ASGIApp) -> ASGIApp:
    """The edge layer as the verifier configures it by default."""
    return EdgeLayer(
        app,
        addresses=ClientAddresses(),
        limits=RateLimits(
            per_address=TokenBucketLimiter(10**9), per_device=TokenBucketLimiter(120)
        ),
        metrics=Metrics(),
        routes=("/healthz", "/v1/challenge"),
        max_body_bytes=64 * 1024,
        body_timeout_s=10,
    )


def _scope(method: str, path: str, body: bytes) -> dict[str, Any]:
    headers = [(b"host", b"verifier")]
    if body:
        headers += [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())]  # fmt: skip
    return {"type": "http", "method": method, "path": path, "headers": headers,
            "client": ("192.0.2.1", 40000)}  # fmt: skip


async def _us_per_request(app: ASGIApp, request: tuple[str, str, bytes], seconds: float) -> float:
    method, path, body = request
    scope = _scope(method, path, body)
    statuses: set[int] = set()

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(200):
            await app(dict(scope), receive, send)
        count += 200
    assert statuses == {200}, f"unexpected answers {statuses}"
    return (time.perf_counter() - start) / count * 1e6


def compare(
    stacks: dict[str, Callable[[ASGIApp], ASGIApp]], *, seconds: float
) -> dict[str, dict[str, float]]:
    """Best-of-rounds µs per request of each stack around ``minimal_app``, for each request."""
    apps = {name: wrap(minimal_app) for name, wrap in stacks.items()}
    slot = seconds / (ROUNDS * len(apps) * len(REQUESTS))
    best = {name: {r: float("inf") for r in REQUESTS} for name in apps}
    for _ in range(ROUNDS):
        for label, request in REQUESTS.items():
            for name, app in apps.items():
                us = asyncio.run(_us_per_request(app, request, slot))
                best[name][label] = min(best[name][label], us)
    return best


def main() -> int:
    """Run the comparison and print it."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="total measuring time")
    args = parser.parse_args()
    us = compare({"baseline": lambda app: app, "edge": with_edge}, seconds=args.seconds)
    result: dict[str, Any] = {}
    for label in REQUESTS:
        base, edge = us["baseline"][label], us["edge"][label]
        print(
            f"{label:20} baseline {base:6.1f} us  with edge {edge:6.1f} us  "
            f"layer {edge - base:5.1f} us  ratio {edge / base:.2f}"
        )
        result[label] = {
            "baseline_us": round(base, 2),
            "edge_us": round(edge, 2),
            "layer_us": round(edge - base, 2),
            "ratio": round(edge / base, 2),
        }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
