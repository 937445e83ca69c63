"""A request id for every HTTP request: taken from ``X-Request-Id`` when it is a sane token
(a gateway's), else generated; ``server.edge`` sets it for the request, echoes it in the
response, and it is added to every log line written while the request is handled
(``request_id`` in JSON logs)."""

from __future__ import annotations

import logging
import re
import secrets
from contextvars import ContextVar

from starlette.types import Scope

HEADER = b"x-request-id"
_VALID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
current_request_id: ContextVar[str | None] = ContextVar("envattest_request_id", default=None)


def request_id(scope: Scope) -> str:
    """The gateway's ``X-Request-Id`` when it is a sane token, else a new one."""
    for key, value in scope["headers"]:
        if key == HEADER:
            given = bytes(value).decode("latin-1")
            if _VALID.fullmatch(given):
                return given
            break
    return secrets.token_hex(8)


class RequestIdFilter(logging.Filter):
    """Adds the current request id to a record's structured fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = current_request_id.get()
        if rid is not None:
            fields = getattr(record, "fields", None)
            record.fields = {**(fields if isinstance(fields, dict) else {}), "request_id": rid}
        return True
