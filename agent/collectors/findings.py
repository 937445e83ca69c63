"""What a source reader returns: the values it found and the sources it could not read."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from agent.collectors.configfiles import ErrorCode
from attest.catalog.values import SourceError

T = TypeVar("T")


@dataclass(frozen=True)
class Findings(Generic[T]):
    """Values found, in source order, and ``{source, error}`` for sources that failed."""

    found: tuple[T, ...] = ()
    errors: tuple[SourceError, ...] = field(default=())

    def __add__(self, other: Findings[T]) -> Findings[T]:
        return Findings(self.found + other.found, self.errors + other.errors)

    @staticmethod
    def merge(parts: Iterable[Findings[T]]) -> Findings[T]:
        """All ``parts`` in order."""
        found: list[T] = []
        errors: list[SourceError] = []
        for part in parts:
            found.extend(part.found)
            errors.extend(part.errors)
        return Findings(tuple(found), tuple(errors))


def source_error(source: str, code: ErrorCode) -> SourceError:
    """The catalog's ``{source, error}`` value."""
    return {"source": source, "error": code.value}


def failed(source: str, code: ErrorCode) -> Findings[T]:
    """Findings of a source that could not be read at all."""
    return Findings(errors=(source_error(source, code),))
