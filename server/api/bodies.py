"""Request bodies at the boundary: JSON through ``attest.strictjson``, forms bounded.

FastAPI reads a model-typed body with ``Request.json()``; routes built by ``StrictJsonRoute``
get a request whose ``json()`` is the bounded parser, so hostile JSON (huge numbers, deep
nesting, duplicate members, non-UTF-8) is a 400 problem before pydantic sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

from attest.errors import FormatError
from attest.strictjson import parse_json
from server.errors import BadRequestError

MAX_FORM_FIELDS = 8


class MalformedBodyError(HTTPException):
    """A body the bounded parser refused (FastAPI re-raises HTTPException from body parsing)."""

    def __init__(self, detail: str) -> None:
        super().__init__(status_code=400, detail=detail)


class StrictJsonRequest(Request):
    """A request whose JSON body is parsed within bounds."""

    async def json(self) -> Any:
        """The body as JSON; raises MalformedBodyError (400)."""
        if not hasattr(self, "_json"):
            try:
                self._json = parse_json(await self.body(), what="request body")
            except FormatError as exc:
                raise MalformedBodyError(str(exc)) from None
        return self._json


class StrictJsonRoute(APIRoute):
    """An API route whose model-typed body goes through the bounded JSON parser."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_handler


def parse_form(body: bytes, *, what: str = "form body") -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body: UTF-8, at most ``MAX_FORM_FIELDS``
    fields, each name once; raises BadRequestError."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, max_num_fields=MAX_FORM_FIELDS, errors="strict")
    except UnicodeDecodeError:
        raise BadRequestError(f"{what}: not UTF-8; send a UTF-8 form") from None
    except ValueError:
        raise BadRequestError(
            f"{what}: more than {MAX_FORM_FIELDS} fields; send only the ones the endpoint takes"
        ) from None
    form = dict(pairs)
    if len(form) != len(pairs):
        raise BadRequestError(f"{what}: a field appears twice; send each field once")
    return form
