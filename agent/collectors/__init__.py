"""Signal collectors, one module per family.

Collectors read nothing global: the environment, file-system roots, command runner, registry
reader and interface lister all come in a ``CollectionContext``, so tests drive them with
fixture trees. A collector computes only the fields it is asked for.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from attest.catalog import CATALOG, Family, FieldId

Platform = Literal["linux", "darwin", "windows"]
CommandRunner = Callable[[Sequence[str]], str | None]
"""Runs a command (argv) and returns its stdout, or None if it is missing, fails or times out."""
RegistryReader = Callable[[str, str, str], object | None]
"""Reads a Windows registry value (hive, key path, value name); None when absent."""
InterfaceLister = Callable[[], Iterable[str]]
"""Names of the machine's network interfaces."""
Clock = Callable[[], datetime]
LocalOffset = Callable[[datetime], timedelta]
"""The UTC offset the process's own clock applies at an instant (for a zone with no name)."""

COMMAND_TIMEOUT_S = 2.0


def run_command(argv: Sequence[str]) -> str | None:
    """The real command runner: short timeout, no shell, stdout or None."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def read_registry(hive: str, key: str, name: str) -> object | None:
    """The real registry reader (Windows only; None elsewhere)."""
    if sys.platform != "win32":
        return None
    import winreg

    root = {"HKCU": winreg.HKEY_CURRENT_USER, "HKLM": winreg.HKEY_LOCAL_MACHINE}[hive]
    try:
        with winreg.OpenKey(root, key) as handle:
            value: object = winreg.QueryValueEx(handle, name)[0]
            return value
    except OSError:
        return None


def list_interfaces() -> Iterable[str]:
    """The real interface lister (psutil)."""
    import psutil

    return list(psutil.net_if_addrs())


def system_local_offset(now: datetime) -> timedelta:
    """The real local offset: what the C library makes of this process's time zone."""
    return now.astimezone().utcoffset() or timedelta(0)


def current_platform() -> Platform:
    """This machine's platform family."""
    if sys.platform == "win32":
        return "windows"
    if sys.platform == "darwin":
        return "darwin"
    return "linux"


@dataclass(frozen=True)
class CollectionContext:
    """Everything a collector may look at. Tests build one over a fixture tree."""

    env: Mapping[str, str]
    home: Path
    project_dir: Path
    system_root: Path = Path("/")
    platform: Platform = "linux"
    run: CommandRunner = run_command
    registry: RegistryReader = read_registry
    interfaces: InterfaceLister = list_interfaces
    clock: Clock = field(default=lambda: datetime.now(UTC))
    local_offset: LocalOffset = system_local_offset
    # set only by the envattest proxy for its own attestations: (listen URL, upstream URL).
    # Never read from the environment, which the user controls.
    proxied: tuple[str, str] | None = None

    @classmethod
    def for_this_machine(cls, project_dir: Path | None = None) -> CollectionContext:
        """The real machine: process environment, home directory, current directory."""
        return cls(
            env=dict(os.environ),
            home=Path.home(),
            project_dir=project_dir or Path.cwd(),
            system_root=Path(os.environ.get("SYSTEMDRIVE", "C:") + "\\")
            if sys.platform == "win32"
            else Path("/"),
            platform=current_platform(),
        )


def collect_signals(ctx: CollectionContext, wanted: Iterable[str]) -> dict[FieldId, object]:
    """Collect exactly the ``wanted`` catalog fields, by family; nothing else is read."""
    from agent.collectors import baseurls, proxy, timezone

    wanted_ids = frozenset(FieldId(f) for f in wanted if f in CATALOG)
    by_family = {
        Family.TIMEZONE: timezone.collect,
        Family.PROXY: proxy.collect,
        Family.BASEURL: baseurls.collect,
    }
    signals: dict[FieldId, object] = {}
    for family, collect in by_family.items():
        family_wanted = frozenset(f for f in wanted_ids if CATALOG[f].family is family)
        if family_wanted:
            values = collect(ctx, family_wanted)
            signals.update({k: v for k, v in values.items() if k in family_wanted})
    return signals
