"""A reader for git's config syntax, enough to find proxy settings without running git.

git's format is INI-like but not INI: quoted subsections (``[http "https://host/"]``),
case-insensitive section and key names, bare boolean keys, quoted values with escapes,
``#``/``;`` comments outside quotes, backslash line continuation, and a key on the same
line as its section header. ``include``/``includeIf`` are not followed: an included file is
under the user's own paths anyway, and following them would read files nobody asked for.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_HEADER = re.compile(r'\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:\\.|[^"\\])*)")?\s*\]')
_KEY = re.compile(r"([A-Za-z][A-Za-z0-9-]*)\s*(?:=(.*))?$", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "b": "\b", '"': '"', "\\": "\\"}


class GitEntry(NamedTuple):
    """One ``section[.subsection].key = value``; section and key lower-cased."""

    section: str
    subsection: str | None
    key: str
    value: str


def _value(raw: str) -> str:
    """Unquote, unescape and strip comments the way git does."""
    out: list[str] = []
    quoted = False
    pending_space = ""
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == '"':
            quoted = not quoted
        elif c == "\\" and i + 1 < len(raw):
            i += 1
            out.append(pending_space + _ESCAPES.get(raw[i], raw[i]))
            pending_space = ""
        elif c in "#;" and not quoted:
            break
        elif c.isspace() and not quoted:
            if out:
                pending_space += c
        else:
            out.append(pending_space + c)
            pending_space = ""
        i += 1
    return "".join(out)


def _logical_lines(text: str) -> list[str]:
    """Physical lines joined where a value ends in a continuation backslash."""
    lines: list[str] = []
    buffer = ""
    for line in text.splitlines():
        if line.endswith("\\") and not line.endswith("\\\\"):
            buffer += line[:-1]
            continue
        lines.append(buffer + line)
        buffer = ""
    if buffer:
        lines.append(buffer)
    return lines


def parse_git_config(text: str) -> list[GitEntry]:
    """Every entry of a git config file, in file order; lines git would reject are skipped."""
    entries: list[GitEntry] = []
    section: str | None = None
    subsection: str | None = None
    for line in _logical_lines(text):
        line = line.strip()
        header = _HEADER.match(line)
        if header:
            name, sub = header.group(1).lower(), header.group(2)
            if sub is None and "." in name:  # deprecated [section.subsection] form
                name, _, sub = name.partition(".")
            section, subsection = name, None if sub is None else re.sub(r"\\(.)", r"\1", sub)
            line = line[header.end() :].strip()
        elif line.startswith("["):
            # git rejects the file at a malformed header; we skip to the next good one.
            section = None
            continue
        if not line or line[0] in "#;" or section is None:
            continue
        entry = _KEY.match(line)
        if entry:
            raw = entry.group(2)
            value = "true" if raw is None else _value(raw)
            entries.append(GitEntry(section, subsection, entry.group(1).lower(), value))
    return entries
