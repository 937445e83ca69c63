"""IANA time zones through the ``tzdata`` package, the same data on the agent and the verifier.

A zone has one canonical name: a tzdata ``Zone``. Every other name is a ``Link`` to one
(``Asia/Calcutta`` -> ``Asia/Kolkata``, ``US/Pacific`` -> ``America/Los_Angeles``, the
"backward" file). The link table is read from ``tzdata.zi``, the compact source the package
ships, so nothing here lists zone names by hand. Offsets come from the package's compiled
files too, never from the host system's copy, so both sides compute the same thing.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from types import MappingProxyType
from zoneinfo import ZoneInfo

import tzdata  # type: ignore[import-untyped]  # its files: importing it makes bundlers ship them

_MAX_LINK_HOPS = 4


@dataclass(frozen=True)
class TzDatabase:
    """Zone names and links of one tzdata release."""

    version: str
    zones: frozenset[str]
    links: Mapping[str, str]

    def canonical(self, name: str) -> str | None:
        """The canonical zone ``name`` stands for; None when tzdata does not know it."""
        for _ in range(_MAX_LINK_HOPS):
            if name in self.zones:
                return name
            target = self.links.get(name)
            if target is None:
                return None
            name = target
        return None

    def utc_offset_minutes(self, name: str, at: datetime) -> int | None:
        """The offset of known zone ``name`` at instant ``at`` (aware), in minutes."""
        canonical = self.canonical(name)
        if canonical is None:
            return None
        offset = at.astimezone(_zone(canonical)).utcoffset() or timedelta(0)
        return int(offset.total_seconds() // 60)

    def names_of(self, canonical: str) -> frozenset[str]:
        """The canonical name and every link to it."""
        return frozenset({canonical, *(a for a, t in self.links.items() if t == canonical)})


def parse_tzdata_zi(text: str) -> TzDatabase:
    """Zones and links of a ``tzdata.zi`` text (``Z name ...`` and ``L target alias`` lines)."""
    version = "unknown"
    zones: set[str] = set()
    links: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if line.startswith("# version") and len(parts) == 3:
            version = parts[2]
        elif parts[:1] == ["Z"] and len(parts) >= 2:
            zones.add(parts[1])
        elif parts[:1] == ["L"] and len(parts) == 3:
            links[parts[2]] = parts[1]
    return TzDatabase(version, frozenset(zones), MappingProxyType(links))


@functools.cache
def tz_database() -> TzDatabase:
    """The installed ``tzdata`` package's database (read once)."""
    text = resources.files(tzdata).joinpath("zoneinfo", "tzdata.zi").read_text("utf-8")
    return parse_tzdata_zi(text)


@functools.lru_cache(maxsize=512)
def _zone(canonical: str) -> ZoneInfo:
    path = resources.files(tzdata).joinpath("zoneinfo", *canonical.split("/"))
    with path.open("rb") as handle:
        return ZoneInfo.from_file(handle, key=canonical)


__all__ = ["TzDatabase", "parse_tzdata_zi", "tz_database"]
