"""What a source reader returns: the values it found and the sources it could not read."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from typing_extensions import TypedDict

from agent.collectors.configfiles import ErrorCode
from attest.catalog.values import (
    BaseUrlField,
    BaseUrlSourceError,
    ProxySourceError,
    ProxySourceField,
)

T = TypeVar("T")


class Problem(TypedDict):
    """A source that could not be read or parsed, and why; never its contents."""

    source: str
    error: str


@dataclass(frozen=True)
class Findings(Generic[T]):
    """Values found, in source order, and the sources that failed."""

    found: tuple[T, ...] = ()
    errors: tuple[Problem, ...] = field(default=())

    def __add__(self, other: Findings[T]) -> Findings[T]:
        return Findings(self.found + other.found, self.errors + other.errors)

    @staticmethod
    def merge(parts: Iterable[Findings[T]]) -> Findings[T]:
        """All ``parts`` in order."""
        found: list[T] = []
        errors: list[Problem] = []
        for part in parts:
            found.extend(part.found)
            errors.extend(part.errors)
        return Findings(tuple(found), tuple(errors))


def failed(source: str, code: ErrorCode) -> Findings[T]:
    """Findings of a source that could not be read at all."""
    return Findings(errors=(problem(source, code),))


def problem(source: str, code: ErrorCode) -> Problem:
    """``source`` could not be used, for reason ``code``."""
    return {"source": source, "error": code.value}


def baseurl_errors(field_id: BaseUrlField, problems: Iterable[Problem]) -> list[BaseUrlSourceError]:
    """The catalog's ``{field, source, error}`` entries for a base-URL field's problems."""
    return [{"field": field_id, "source": p["source"], "error": p["error"]} for p in problems]


def proxy_errors(field_id: ProxySourceField, problems: Iterable[Problem]) -> list[ProxySourceError]:
    """The catalog's ``{field, source, error}`` entries for a proxy field's problems."""
    return [{"field": field_id, "source": p["source"], "error": p["error"]} for p in problems]
