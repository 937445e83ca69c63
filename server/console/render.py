"""HTML rendering: Jinja2 with autoescaping on for every template (agent-supplied values are
text, never markup), and the filters the pages use."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined


def iso_time(at: int | None) -> str:
    """Unix seconds as ``2026-01-31 08:00:00Z`` (0 and None: never)."""
    if not at:
        return "never"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def as_json(value: Any, indent: int | None = None) -> str:
    """JSON as text (the template escapes it like any other text, so it reads literally)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=indent)


def query(base: dict[str, Any], **changes: Any) -> str:
    """A query string: ``base`` with ``changes`` applied, empty values left out."""
    merged = {**base, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "")})


@cache
def environment() -> Environment:
    """The template environment (built once)."""
    env = Environment(
        loader=PackageLoader("server.console", "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["iso"] = iso_time
    env.filters["json"] = as_json
    env.globals["query"] = query
    return env


def render(
    request: Request, template: str, values: dict[str, Any], *, status: int = 200
) -> HTMLResponse:
    """Render ``template`` with the viewer and the form token of this request."""
    signed_in = getattr(request.state, "viewer", None)
    html = (
        environment()
        .get_template(template)
        .render(
            user=signed_in.user.username if signed_in else None,
            form_token=getattr(request.state, "form_token", ""),
            path=request.url.path,
            **values,
        )
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
