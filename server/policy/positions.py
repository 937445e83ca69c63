"""Line numbers for TOML key paths, so policy errors can say "line 12".

``tomllib`` parses values but reports no positions. ``key_lines`` walks the same text a
second time, only after ``tomllib`` accepted it, and records the line where every table
header, key and array element starts: ``("rules", "timezone", "allow", 2) -> 14``.
It understands the TOML structure (tables, arrays of tables, dotted and quoted keys, inline
tables, arrays, every string form, comments) but converts no values.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping

KeyPath = tuple[str | int, ...]

_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def format_path(path: KeyPath) -> str:
    """``rules.timezone.allow[2]``; keys that are not bare are quoted."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = part if part and all(c in _BARE for c in part) else f'"{part}"'
        out += f".{text}" if out else text
    return out


def line_of(lines: Mapping[KeyPath, int], path: KeyPath) -> int | None:
    """The line of ``path``, else of its nearest recorded parent (for a missing key)."""
    for end in range(len(path), 0, -1):
        found = lines.get(path[:end])
        if found is not None:
            return found
    return None


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[KeyPath, int] = {}
        self.table_arrays: dict[KeyPath, int] = {}

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def advance(self, n: int = 1) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + n)
        self.pos += n

    def record(self, path: KeyPath) -> None:
        self.lines.setdefault(path, self.line)

    def skip_blank(self, *, newlines: bool) -> None:
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c in " \t\r" or (newlines and c == "\n"):
                self.advance()
            elif c == "#":
                end = self.text.find("\n", self.pos)
                self.advance((len(self.text) if end < 0 else end) - self.pos)
            else:
                return

    def string(self) -> str:
        quote = self.peek()
        if self.peek(3) == quote * 3:  # multi-line: a value, never a key, so not kept
            self.advance(3)
            while self.pos < len(self.text) and self.peek(3) != quote * 3:
                self.advance(2 if quote == '"' and self.peek() == "\\" else 1)
            self.advance(3)
            while self.peek() == quote:  # up to two quotes may end the content
                self.advance()
            return ""
        start = self.pos
        self.advance()
        while self.pos < len(self.text) and self.peek() != quote:
            self.advance(2 if quote == '"' and self.peek() == "\\" else 1)
        self.advance()
        raw = self.text[start : self.pos]
        return _basic_string(raw) if quote == '"' and "\\" in raw else raw[1:-1]

    def key(self) -> KeyPath:
        parts: list[str | int] = []
        while True:
            self.skip_blank(newlines=False)
            if self.peek() in ('"', "'"):
                parts.append(self.string())
            else:
                start = self.pos
                while self.pos < len(self.text) and self.text[self.pos] in _BARE:
                    self.advance()
                parts.append(self.text[start : self.pos])
            self.skip_blank(newlines=False)
            if self.peek() != ".":
                return tuple(parts)
            self.advance()

    def value(self, path: KeyPath) -> None:
        self.skip_blank(newlines=False)
        c = self.peek()
        if c in ('"', "'"):
            self.string()
        elif c == "[":
            self.advance()
            index = 0
            while True:
                self.skip_blank(newlines=True)
                if self.peek() in ("]", ""):
                    self.advance()
                    return
                self.record((*path, index))
                self.value((*path, index))
                self.skip_blank(newlines=True)
                if self.peek() == ",":
                    self.advance()
                    index += 1
        elif c == "{":
            self.advance()
            while True:
                self.skip_blank(newlines=False)
                if self.peek() in ("}", ""):
                    self.advance()
                    return
                if self.peek() == ",":
                    self.advance()
                    continue
                self.assignment(path)
        else:
            while self.pos < len(self.text) and self.text[self.pos] not in ",]}\n#":
                self.advance()

    def assignment(self, table: KeyPath) -> None:
        line = self.line
        key = self.key()
        for end in range(1, len(key) + 1):  # dotted keys define their parents too
            self.lines.setdefault((*table, *key[:end]), line)
        self.skip_blank(newlines=False)
        self.advance()  # '='
        self.value((*table, *key))

    def resolve(self, name: KeyPath) -> KeyPath:
        """``[a.b]`` after ``[[a]]`` is a table inside the last ``a`` element."""
        out: list[str | int] = []
        for part in name:
            out.append(part)
            index = self.table_arrays.get(tuple(out))
            if index is not None and len(out) < len(name):
                out.append(index)
        return tuple(out)

    def document(self) -> dict[KeyPath, int]:
        table: KeyPath = ()
        while True:
            self.skip_blank(newlines=True)
            if self.pos >= len(self.text):
                return self.lines
            if self.peek(2) == "[[":
                self.advance(2)
                name = self.resolve(self.key())
                self.advance(2)
                index = self.table_arrays.get(name, -1) + 1
                self.table_arrays[name] = index
                table = (*name, index)
                for end in range(1, len(table) + 1):  # implicit parent tables start here too
                    self.record(table[:end])
            elif self.peek() == "[":
                self.advance()
                table = self.resolve(self.key())
                self.advance()
                for end in range(1, len(table) + 1):  # implicit parent tables start here too
                    self.record(table[:end])
            else:
                self.assignment(table)


def _basic_string(raw: str) -> str:
    """A quoted key with escapes, decoded as TOML decodes it (``"a\\"b"`` is ``a"b``)."""
    try:
        return str(tomllib.loads(f"k = {raw}")["k"])
    except tomllib.TOMLDecodeError:  # not a key tomllib accepted: no line is recorded for it
        return raw


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map each key path in a valid TOML document to the 1-based line where it starts."""
    return _Scanner(text).document()


__all__ = ["KeyPath", "format_path", "key_lines", "line_of"]
