"""A stub LLM API on loopback that records what reached it.

It speaks just enough of the Anthropic Messages API (JSON and SSE streaming, token counting),
of the OpenAI Responses and Chat Completions APIs (what Codex and OpenAI-compatible tools
call) and of the Gemini API (``generateContent``, ``streamGenerateContent?alt=sse``,
``countTokens``: what Gemini CLI calls) for a real coding tool to finish one turn. Every
request is recorded with its headers, so a test behind a gateway can assert what the
upstream saw, and that it saw nothing at all when the gateway refused.

    with running_llm_api(reply="hello") as api:
        ...                      # point a tool or a gateway at api.url
        assert api.requests[-1].headers["x-envattest-device"] == device_id
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 64 * 1024 * 1024


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the upstream received it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (``None`` when empty or not JSON)."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


@dataclass
class StubLlmApi:
    """A running stub: its URL, the reply text, and every request it received."""

    url: str
    reply: str
    requests: list[RecordedRequest] = field(default_factory=list)
    # a test may refuse some requests itself (401), e.g. to stand in for an expired key
    authorize: Callable[[RecordedRequest], bool] | None = None
    # seconds to wait before answering, by path suffix (e.g. {"/v1/models": 2.0})
    delays: dict[str, float] = field(default_factory=dict)
    # Responses API only: function calls to answer, one per request, before the text reply
    # (e.g. {"name": "get_goal", "arguments": "{}"}), so a tool sends a second request
    pending_calls: list[dict[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, request: RecordedRequest) -> None:
        """Append one request (thread-safe)."""
        with self._lock:
            self.requests.append(request)

    def clear(self) -> None:
        """Forget the requests seen so far."""
        with self._lock:
            self.requests.clear()

    def model_requests(self) -> list[RecordedRequest]:
        """Only the requests that asked a model for an answer (not counts, not listings)."""
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0].endswith(_GENERATE)]


_GENERATE = ("/messages", "/responses", "/chat/completions", ":streamGenerateContent")
_UNAUTHORIZED = json.dumps(
    {"type": "error", "error": {"type": "authentication_error", "message": "invalid key"}}
).encode()


def _sse(events: list[tuple[str | None, dict[str, Any] | str]]) -> bytes:
    out = []
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {name}\n" if name else "") + f"data: {payload}\n\n")
    return "".join(out).encode()


def _anthropic(body: dict[str, Any], text: str) -> tuple[str, bytes]:
    model = str(body.get("model", "stub-model"))
    usage = {"input_tokens": 3, "output_tokens": 2}
    message = {
        "id": "msg_stub",
        "type": "message",
        "role": "assistant",
        "model": model,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }
    if not body.get("stream"):
        whole = {**message, "content": [{"type": "text", "text": text}]}
        return "application/json", json.dumps(whole).encode()
    started: dict[str, Any] = {**message, "content": [], "stop_reason": None}
    empty_block = {"type": "text", "text": ""}
    delta = {"type": "text_delta", "text": text}
    return "text/event-stream", _sse(
        [
            ("message_start", {"type": "message_start", "message": started}),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": empty_block},
            ),
            ("ping", {"type": "ping"}),
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": delta},
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 2},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
    )  # fmt: skip


def _responses(
    body: dict[str, Any], text: str, call: dict[str, str] | None = None
) -> tuple[str, bytes]:
    model = str(body.get("model", "stub-model"))
    item: dict[str, Any] = {
        "type": "message",
        "id": "msg_stub",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    if call is not None:
        item = {"type": "function_call", "id": "fc_stub", "call_id": "call_stub",
                "status": "completed", **call}  # fmt: skip
    usage = {
        "input_tokens": 3,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 2,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 5,
    }
    response = {
        "id": "resp_stub",
        "object": "response",
        "model": model,
        "status": "completed",
        "output": [item],
        "usage": usage,
    }
    if not body.get("stream"):
        return "application/json", json.dumps(response).encode()
    created = {**response, "status": "in_progress", "output": []}
    return "text/event-stream", _sse(
        [
            ("response.created", {"type": "response.created", "response": created}),
            (
                "response.output_item.added",
                {"type": "response.output_item.added", "output_index": 0,
                 "item": {**item, "status": "in_progress",
                          **({"content": []} if call is None else {})}},
            ),
            *([] if call is not None else [(
                "response.output_text.delta",
                {"type": "response.output_text.delta", "item_id": "msg_stub", "output_index": 0,
                 "content_index": 0, "delta": text},
            )]),
            (
                "response.output_item.done",
                {"type": "response.output_item.done", "output_index": 0, "item": item},
            ),
            ("response.completed", {"type": "response.completed", "response": response}),
        ]
    )  # fmt: skip


def _chat(body: dict[str, Any], text: str) -> tuple[str, bytes]:
    model = str(body.get("model", "stub-model"))
    base = {"id": "chatcmpl-stub", "created": 0, "model": model}
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    if not body.get("stream"):
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop",
        }
        whole = {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
        return "application/json", json.dumps(whole).encode()
    chunk = {**base, "object": "chat.completion.chunk"}
    first = {"role": "assistant", "content": text}
    return "text/event-stream", _sse(
        [
            (None, {**chunk, "choices": [{"index": 0, "delta": first, "finish_reason": None}]}),
            (None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    "usage": usage}),
            (None, "[DONE]"),
        ]
    )  # fmt: skip


def _gemini(route: str, text: str) -> tuple[str, bytes]:
    # a side request (Gemini CLI's next-speaker and routing checks) wants JSON text back
    side = route.endswith(":generateContent")
    reply = '{"next_speaker": "user", "reasoning": "answered"}' if side else text
    candidate = {
        "content": {"role": "model", "parts": [{"text": reply}]},
        "finishReason": "STOP",
        "index": 0,
    }
    usage = {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}
    response = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "stub-model"}
    if side:
        return "application/json", json.dumps(response).encode()
    return "text/event-stream", _sse([(None, response)])


def _answer(
    method: str, path: str, body: dict[str, Any], text: str, calls: list[dict[str, str]]
) -> tuple[int, str, bytes]:
    route = path.split("?")[0].rstrip("/")
    if method == "POST" and route.endswith("/messages/count_tokens"):
        return 200, "application/json", b'{"input_tokens": 3}'
    if method == "POST" and route.endswith("/messages"):
        return 200, *_anthropic(body, text)
    if method == "POST" and route.endswith("/responses"):
        return 200, *_responses(body, text, calls.pop(0) if calls else None)
    if method == "POST" and route.endswith("/chat/completions"):
        return 200, *_chat(body, text)
    if method == "POST" and route.endswith(":countTokens"):
        return 200, "application/json", b'{"totalTokens": 3}'
    if method == "POST" and route.endswith(("GenerateContent", "generateContent")):
        return 200, *_gemini(route, text)
    if method == "GET" and route.endswith("/models"):
        models = {"object": "list", "data": [{"id": "stub-model", "object": "model"}], "models": []}
        return 200, "application/json", json.dumps(models).encode()
    problem = {"error": {"type": "not_found_error", "message": f"stub has no {method} {route}"}}
    return 404, "application/json", json.dumps(problem).encode()


class _Handler(BaseHTTPRequestHandler):
    stub: StubLlmApi

    def _serve(self) -> None:
        length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
        raw = self.rfile.read(length) if length else b""
        request = RecordedRequest(
            self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, raw
        )
        self.stub.record(request)
        route = self.path.split("?")[0]
        delay = next((s for suffix, s in self.stub.delays.items() if route.endswith(suffix)), 0.0)
        time.sleep(delay)
        parsed = request.json()
        with self.stub._lock:
            status, media, payload = _answer(
                self.command,
                self.path,
                parsed if isinstance(parsed, dict) else {},
                self.stub.reply,
                self.stub.pending_calls,
            )
        if self.stub.authorize is not None and not self.stub.authorize(request):
            status, media, payload = 401, "application/json", _UNAUTHORIZED
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve

    def log_message(self, *_args: object) -> None:
        pass


@contextmanager
def running_llm_api(*, reply: str = "stub says hello") -> Iterator[StubLlmApi]:
    """The stub on a free 127.0.0.1 port until the block ends."""
    stub = StubLlmApi(url="", reply=reply)
    handler = type("StubHandler", (_Handler,), {"stub": stub})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


__all__ = ["RecordedRequest", "StubLlmApi", "running_llm_api"]
