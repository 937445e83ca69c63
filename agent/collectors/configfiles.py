"""Reading configuration files that may be hostile: capped, never blocking, never crashing.

A missing file is simply absent (``None``). Anything else that stops a file from being read
or parsed becomes an ``ErrorCode`` that names the problem, never the contents: collectors
report it as ``{source, error}`` and go on.
"""

from __future__ import annotations

import codecs
import errno
import json
import os
import re
import stat
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml

MAX_CONFIG_BYTES = 1 << 20
"""No configuration file of interest comes near 1 MiB; bigger ones are not read at all."""

_WINDOWS_CANT_RESOLVE_FILENAME = 1921  # what Windows says for a symlink loop


class ErrorCode(StrEnum):
    """Short wire codes for a source that could not be read."""

    TOO_LARGE = "too-large"
    NOT_A_FILE = "not-a-file"
    UNREADABLE = "unreadable"
    SYMLINK_LOOP = "symlink-loop"
    BINARY = "binary"
    INVALID_JSON = "invalid-json"
    INVALID_TOML = "invalid-toml"
    INVALID_YAML = "invalid-yaml"
    UNEXPECTED_SHAPE = "unexpected-shape"
    INVALID_URL = "invalid-url"
    INVALID_OUTPUT = "invalid-output"


@dataclass(frozen=True)
class ConfigFile:
    """A file that exists: its parsed ``data``, or the ``error`` that stopped us."""

    data: object = None
    error: ErrorCode | None = None


def _error_for(exc: OSError) -> ErrorCode:
    if exc.errno == errno.ELOOP or getattr(exc, "winerror", None) == _WINDOWS_CANT_RESOLVE_FILENAME:
        return ErrorCode.SYMLINK_LOOP
    return ErrorCode.UNREADABLE


def read_capped(path: Path, *, cap: int = MAX_CONFIG_BYTES) -> bytes | ErrorCode | None:
    """The bytes of regular file ``path`` (at most ``cap``), an ErrorCode, or None if absent."""
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return _error_for(exc)
    # FIFOs and devices would block or never end: only regular files are opened.
    if not stat.S_ISREG(info.st_mode):
        return ErrorCode.NOT_A_FILE
    if info.st_size > cap:
        return ErrorCode.TOO_LARGE
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return _error_for(exc)
    try:
        # The file may have been swapped or grown since stat(): check the open handle.
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ErrorCode.NOT_A_FILE
        data = os.read(fd, cap + 1)
    except OSError as exc:
        return _error_for(exc)
    finally:
        os.close(fd)
    return ErrorCode.TOO_LARGE if len(data) > cap else data


def decode_text(data: bytes) -> str | ErrorCode:
    """UTF-8 text (BOM tolerated; UTF-16 with a BOM, as Windows editors write); else BINARY."""
    try:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            text = data.decode("utf-16")
        else:
            text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return ErrorCode.BINARY
    return ErrorCode.BINARY if "\x00" in text else text


def read_text(path: Path) -> str | ErrorCode | None:
    """Decoded text of ``path``, an ErrorCode, or None if absent."""
    data = read_capped(path)
    if data is None or isinstance(data, ErrorCode):
        return data
    return decode_text(data)


def load_text(path: Path) -> ConfigFile | None:
    """``path`` as text for a line-oriented parser; None if absent."""
    text = read_text(path)
    if text is None:
        return None
    return ConfigFile(error=text) if isinstance(text, ErrorCode) else ConfigFile(data=text)


# Strings are matched first so that "//" inside a URL string is left alone.
_JSONC_COMMENT = re.compile(r'("(?:\\.|[^"\\])*")|//[^\n]*|/\*.*?\*/', re.DOTALL)
_JSONC_TRAILING_COMMA = re.compile(r'("(?:\\.|[^"\\])*")|,(?=\s*[}\]])')


def strip_jsonc(text: str) -> str:
    """JSON with comments and trailing commas (VS Code style) as plain JSON."""
    text = _JSONC_COMMENT.sub(lambda m: m.group(1) or "", text)
    return _JSONC_TRAILING_COMMA.sub(lambda m: m.group(1) or "", text)


def _load_parsed(
    path: Path,
    parse: Callable[[str], object],
    error: ErrorCode,
    failures: tuple[type[Exception], ...],
) -> ConfigFile | None:
    """Read ``path`` and parse it; None if absent, ``error`` if ``parse`` raises ``failures``."""
    text = read_text(path)
    if text is None:
        return None
    if isinstance(text, ErrorCode):
        return ConfigFile(error=text)
    try:
        return ConfigFile(data=parse(text))
    except failures:
        return ConfigFile(error=error)


def load_json(path: Path, *, comments: bool = False) -> ConfigFile | None:
    """Parsed JSON (JSONC when ``comments``); None if absent."""

    def parse(text: str) -> object:
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            if not comments:
                raise
        return json.loads(strip_jsonc(text))

    return _load_parsed(path, parse, ErrorCode.INVALID_JSON, (ValueError, RecursionError))


def load_toml(path: Path) -> ConfigFile | None:
    """Parsed TOML; None if absent."""
    return _load_parsed(path, tomllib.loads, ErrorCode.INVALID_TOML, (ValueError, RecursionError))


def load_yaml(path: Path) -> ConfigFile | None:
    """Parsed YAML, safe loader only (no Python tags); None if absent."""
    # The pure-Python safe loader, not libyaml's CSafeLoader: deep nesting overflows the C
    # stack there (a crash), and only raises RecursionError here.
    return _load_parsed(
        path, yaml.safe_load, ErrorCode.INVALID_YAML, (yaml.YAMLError, ValueError, RecursionError)
    )


def parse_ini(text: str) -> list[tuple[str, str, str]]:
    """``(section, key, value)`` triples of an INI-ish file (pip.conf, .npmrc, kioslaverc).

    Tolerant like the tools themselves: no section means ``""``, ``=`` or ``:`` separates,
    comments start a line or follow whitespace, matching quotes are removed. Section and
    key names are lower-cased; KDE's ``[$e]`` style key flags are dropped.
    """
    entries: list[tuple[str, str, str]] = []
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            continue
        sep = "=" if "=" in line else ":"
        key, found, value = line.partition(sep)
        if not found:
            continue
        value = re.split(r"\s[#;]", value, maxsplit=1)[0].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        key = re.sub(r"\[\$[a-z]+\]$", "", key.strip()).lower()
        entries.append((section, key, value))
    return entries


def parse_dotenv(text: str) -> dict[str, str]:
    """``KEY=value`` lines of a .env file (``export`` and quotes allowed)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, found, value = line.removeprefix("export ").partition("=")
        if not found:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        else:
            value = re.split(r"\s#", value, maxsplit=1)[0].strip()
        values[key.strip()] = value
    return values
