"""Helpers shared by the collector tests (fixtures live in conftest)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "collectors"


def command_output(platform: str, name: str) -> str:
    """A recorded command output file."""
    return (FIXTURES / platform / "commands" / name).read_text(encoding="utf-8")


def runner_of(outputs: dict[tuple[str, ...], str]) -> Callable[[Sequence[str]], str | None]:
    """A runner answering only the given commands."""
    return lambda argv: outputs.get(tuple(argv))


def write(path: Path, text: str | bytes) -> Path:
    """Create ``path`` (and its parents) with ``text``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path
