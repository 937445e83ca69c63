"""The stub LLM API answers each dialect a coding tool speaks and records what it saw."""

from __future__ import annotations

import json

import httpx

from tests.stubs.llm_api import running_llm_api


def _events(body: str) -> list[dict[str, object]]:
    return [
        json.loads(line[6:])
        for line in body.splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]


def test_anthropic_messages_json_and_stream_are_recorded_with_headers() -> None:
    with running_llm_api(reply="hi there") as api:
        plain = httpx.post(
            f"{api.url}/v1/messages",
            json={"model": "m", "messages": []},
            headers={"X-Api-Key": "k"},
        )
        assert plain.json()["content"] == [{"type": "text", "text": "hi there"}]
        stream = httpx.post(f"{api.url}/v1/messages", json={"model": "m", "stream": True})
        assert stream.headers["content-type"] == "text/event-stream"
        types = [e["type"] for e in _events(stream.text)]
        assert types[0] == "message_start"
        assert types[-1] == "message_stop"
        assert api.requests[0].headers["x-api-key"] == "k"
        assert len(api.model_requests()) == 2


def test_openai_responses_and_chat_stream_end_properly() -> None:
    with running_llm_api(reply="yo") as api:
        responses = httpx.post(f"{api.url}/v1/responses", json={"model": "m", "stream": True})
        assert _events(responses.text)[-1]["type"] == "response.completed"
        chat = httpx.post(f"{api.url}/v1/chat/completions", json={"model": "m", "stream": True})
        assert chat.text.rstrip().endswith("data: [DONE]")
        assert httpx.get(f"{api.url}/v1/models").json()["data"][0]["id"] == "stub-model"
        assert httpx.get(f"{api.url}/nope").status_code == 404
        api.clear()
        assert api.requests == []


def test_gemini_stream_side_request_and_count() -> None:
    with running_llm_api(reply="hola") as api:
        base = f"{api.url}/v1beta/models/stub-model"
        stream = httpx.post(f"{base}:streamGenerateContent?alt=sse", json={"contents": []})
        assert stream.headers["content-type"] == "text/event-stream"
        (event,) = _events(stream.text)
        assert event["candidates"][0]["content"]["parts"] == [{"text": "hola"}]  # type: ignore[index]
        side = httpx.post(f"{base}:generateContent", json={"contents": []}).json()
        answer = json.loads(side["candidates"][0]["content"]["parts"][0]["text"])
        assert answer["next_speaker"] == "user"
        assert httpx.post(f"{base}:countTokens", json={}).json() == {"totalTokens": 3}
        assert [r.path for r in api.model_requests()] == [
            "/v1beta/models/stub-model:streamGenerateContent?alt=sse"
        ]
