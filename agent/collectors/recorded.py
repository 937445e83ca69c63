"""A CollectionContext replayed from a recorded machine: files, command output, registry.

A recording is a directory with ``home/``, ``project/``, ``system/`` trees and a
``context.json`` naming the platform, environment, interfaces, command outputs and registry
values. Tests and the benchmark collect from recordings of Linux, macOS and Windows machines
on any machine; a support case can be replayed without the machine at hand.

``context.json``::

    {"platform": "linux",
     "env": {"XDG_CONFIG_HOME": "{home}/.config", ...},
     "interfaces": ["lo", "wg0"],
     "commands": [{"argv": ["scutil", "--proxy"], "stdout": "commands/scutil.txt"}],
     "registry": [{"hive": "HKCU", "key": "...", "name": "ProxyEnable", "dword": 1}]}

``{home}``, ``{project}``, ``{system}`` and ``{recording}`` in environment values become
those paths (a recording sets ``GIT_CEILING_DIRECTORIES`` to ``{recording}`` so that the
search for a git root never leaves it).
Registry values are ``dword``, ``sz`` or ``binary`` (hex).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

from agent.collectors import CollectionContext, Platform

RECORDED_AT = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
"""The fixed instant a recording is replayed at (summer: DST is in effect in the north)."""


@dataclass(frozen=True)
class RecordedCommands:
    """A command runner answering from recorded output; other commands are "not found"."""

    outputs: Mapping[tuple[str, ...], str]
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def __call__(self, argv: Sequence[str]) -> str | None:
        self.calls.append(tuple(argv))
        return self.outputs.get(tuple(argv))


@dataclass(frozen=True)
class RecordedRegistry:
    """A registry reader over recorded values; key paths compare case-insensitively."""

    values: Mapping[tuple[str, str, str], object]

    def __call__(self, hive: str, key: str, name: str) -> object | None:
        return self.values.get((hive.upper(), key.lower(), name.lower()))


def _registry_value(entry: Mapping[str, object]) -> object:
    if "dword" in entry:
        return int(cast(int, entry["dword"]))
    if "binary" in entry:
        return bytes.fromhex(str(entry["binary"]))
    return str(entry["sz"])


def load_recording(
    directory: Path, *, project_dir: Path | None = None
) -> tuple[CollectionContext, RecordedCommands]:
    """The context of the recording in ``directory``, and its runner (to inspect calls)."""
    spec = json.loads((directory / "context.json").read_text(encoding="utf-8"))
    home, system = directory / "home", directory / "system"
    project = project_dir or directory / "project"
    places = {
        "{home}": str(home),
        "{project}": str(project),
        "{system}": str(system),
        "{recording}": str(directory),
    }

    def expand(value: str) -> str:
        for marker, path in places.items():
            value = value.replace(marker, path)
        return value

    commands = RecordedCommands(
        {
            tuple(c["argv"]): (directory / c["stdout"]).read_text(encoding="utf-8")
            for c in spec.get("commands", [])
        }
    )
    registry = RecordedRegistry(
        {
            (e["hive"].upper(), e["key"].lower(), e["name"].lower()): _registry_value(e)
            for e in spec.get("registry", [])
        }
    )
    interfaces: tuple[str, ...] = tuple(spec.get("interfaces", []))
    offset = timedelta(minutes=int(spec.get("local_offset_minutes", 0)))
    context = CollectionContext(
        env={k: expand(v) for k, v in spec.get("env", {}).items()},
        home=home,
        project_dir=project,
        system_root=system,
        platform=cast(Platform, spec["platform"]),
        run=commands,
        registry=registry,
        interfaces=lambda: _names(interfaces),
        clock=lambda: RECORDED_AT,
        local_offset=lambda _now: offset,
    )
    return context, commands


def _names(interfaces: Iterable[str]) -> list[str]:
    return list(interfaces)
