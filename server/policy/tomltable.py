"""Typed reads of one TOML table, with errors that name the file, line and key path.

``TomlTable`` refuses unknown keys up front (suggesting the closest known one), then reads
each key as a string, integer, boolean, enum, array of strings or glob list; every failure
is a ``PolicySchemaError`` located with ``server.policy.positions``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from enum import StrEnum
from typing import TypeVar

from attest.catalog import FieldId
from server.policy.errors import PolicySchemaError
from server.policy.globs import Glob
from server.policy.positions import KeyPath, format_path, key_lines, line_of

EXAMPLES_HINT = "see server/examples/policy-*.toml"

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")


def _toml_type(value: object) -> str:
    kinds: tuple[tuple[type, str], ...] = (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        (list, "an array"),
        (dict, "a table"),
        (datetime, "a date-time"),
        (date, "a date"),
        (time, "a time"),
    )  # every value tomllib returns is one of these
    return next(name for kind, name in kinds if isinstance(value, kind))


class TomlDocument:
    """The parsed file with its key positions; makes errors that name the line."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.lines = key_lines(text)

    def error(self, path: KeyPath, problem: str, fix: str) -> PolicySchemaError:
        """An error located at ``path`` (or its nearest parent that has a line)."""
        line = line_of(self.lines, path)
        return PolicySchemaError(
            problem, source=self.source, fix=fix, line=line or 1, key=format_path(path) or None
        )


class TomlTable:
    """One TOML table: unknown keys are refused up front, then typed reads by key."""

    def __init__(
        self,
        doc: TomlDocument,
        path: KeyPath,
        data: Mapping[str, object],
        known: tuple[str, ...],
        *,
        noun: tuple[str, str] = ("key", "keys"),
    ) -> None:
        self.doc = doc
        self.path = path
        self.data = data
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(key, known)
                hint = f"Did you mean {close[0]!r}? " if close else ""
                listed = ", ".join(known)
                raise self.error(key, f"unknown {noun[0]}", f"{hint}Known {noun[1]}: {listed}.")

    def error(self, key: str | None, problem: str, fix: str) -> PolicySchemaError:
        """An error at ``key`` of this table, or at the table itself."""
        return self.doc.error(self.path if key is None else (*self.path, key), problem, fix)

    def _typed(self, key: str, kind: type[T], what: str, fix: str) -> T:
        value = self.data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(key, f"must be {what}, not {_toml_type(value)} ({value!r})", fix)
        return value

    def text(self, key: str, default: str | None, pattern: re.Pattern[str], fix: str) -> str:
        """A string matching ``pattern``; required when ``default`` is None."""
        if key not in self.data:
            if default is None:
                raise self.error(key, "is missing", fix)
            return default
        value = self._typed(key, str, "a string", fix)
        if not pattern.fullmatch(value):
            raise self.error(key, f"{value!r} is not valid", fix)
        return value

    def integer(self, key: str, default: int | None, bounds: tuple[int, int], unit: str) -> int:
        """An integer within ``bounds`` (inclusive); required when ``default`` is None."""
        low, high = bounds
        fix = f"Set {key} to a whole number of {unit} from {low} to {high}."
        if key not in self.data:
            if default is None:
                raise self.error(key, "is missing", fix)
            return default
        value = self._typed(key, int, "an integer", fix)
        if not low <= value <= high:
            raise self.error(key, f"{value} is outside {low}..{high}", fix)
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        """A boolean."""
        if key not in self.data:
            return default
        return self._typed(key, bool, "a boolean", f"Write {key} = true or {key} = false.")

    def choice(self, key: str, kind: type[E], default: E) -> E:
        """A value of the enum ``kind``."""
        if key not in self.data:
            return default
        known = " or ".join(repr(m.value) for m in kind)
        value = self._typed(key, str, "a string", f"Use {known}.")
        try:
            return kind(value)
        except ValueError:
            raise self.error(key, f"{value!r} is not valid", f"Use {known}.") from None

    def require(self, key: str, fix: str) -> None:
        """Refuse the table when ``key`` is absent."""
        if key not in self.data:
            raise self.error(key, "is missing", fix)

    def strings(self, key: str, fix: str) -> list[tuple[KeyPath, str]]:
        """Each string of the array at ``key`` (present) with its own key path, for errors
        that name the item."""
        value = self._typed(key, list, "an array of strings", fix)
        out: list[tuple[KeyPath, str]] = []
        for index, item in enumerate(value):
            path = (*self.path, key, index)
            if not isinstance(item, str):
                raise self.doc.error(path, f"must be a string, not {_toml_type(item)}", fix)
            out.append((path, item))
        return out

    def globs(
        self,
        key: str,
        make: Callable[[str], Glob],
        *,
        everything_fix: str | None = None,
    ) -> tuple[Glob, ...]:
        """Patterns of ``key`` (none when absent); ``everything_fix`` marks an allow list,
        where ``*`` is refused."""
        if key not in self.data:
            return ()
        fix = f"Write {key} as an array of patterns ({EXAMPLES_HINT})."
        globs: list[Glob] = []
        for path, pattern in self.strings(key, fix):
            if everything_fix is not None and pattern.strip() == "*":
                raise self.doc.error(path, "a bare '*' allows everything", everything_fix)
            try:
                globs.append(make(pattern))
            except ValueError as exc:
                raise self.doc.error(path, str(exc), "Fix or remove this pattern.") from None
        return tuple(globs)

    def subtable(
        self, key: str, fix: str, known: tuple[str, ...], *, noun: tuple[str, str] = ("key", "keys")
    ) -> TomlTable | None:
        """The table under ``key``, or None when absent."""
        if key not in self.data:
            return None
        value = self._typed(key, dict, "a table", fix)
        return TomlTable(self.doc, (*self.path, key), value, known, noun=noun)

    def field_ids(self, key: str, allowed: tuple[FieldId, ...]) -> tuple[FieldId, ...] | None:
        """Catalog field ids from ``allowed``; None when the key is absent."""
        fix = f"Use field ids from: {', '.join(allowed)}."
        if key not in self.data:
            return None
        out: list[FieldId] = []
        for path, item in self.strings(key, fix):
            if item not in allowed:
                raise self.doc.error(path, f"{item!r} is not a field this rule can check", fix)
            out.append(FieldId(item))
        return tuple(dict.fromkeys(out))


__all__ = ["EXAMPLES_HINT", "TomlDocument", "TomlTable"]
