"""Timezone collector: IANA zone (tzlocal's sources, in tzlocal's order), UTC offset, DST now.

Sources are tried cheapest and most authoritative first: ``TZ``, the ``/etc/localtime``
link, the distribution files, and only then a command (``timedatectl`` on Linux,
``systemsetup`` on macOS, which needs admin rights on recent versions). Windows has its zone
in the registry. A candidate counts only if it names a zone tzdata knows, so an odd ``TZ``
such as a private file path is never reported, and it is reported by its canonical name
(``attest.catalog.zones``: a backward link such as ``US/Pacific`` is sent as
``America/Los_Angeles``), the name the verifier matches policy against. Nothing found is a
value, ``(None, "unknown")``, not an error.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import PurePosixPath
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.collectors import CollectionContext
from agent.collectors.configfiles import ErrorCode, read_text
from attest.catalog import FieldId
from attest.catalog.zones import tz_database

IANA = FieldId("timezone.iana")
SOURCE = FieldId("timezone.source")
OFFSET = FieldId("timezone.utc_offset_minutes")
DST = FieldId("timezone.dst")

UNKNOWN = "unknown"
TIMEDATECTL = ("timedatectl", "show", "--property=Timezone", "--value")
SYSTEMSETUP = ("systemsetup", "-gettimezone")
_WINDOWS_ZONE_KEY = r"SYSTEM\CurrentControlSet\Control\TimeZoneInformation"
_MARKER = "zoneinfo/"
_MAX_LINKS = 8
_CLOCK_FILE_ZONE = re.compile(r'^\s*(?:ZONE|TIMEZONE)\s*=\s*"?([^"\s]+)"?', re.MULTILINE)


def known_zone(name: str | None) -> str | None:
    """The canonical tzdata name of zone ``name`` (``Asia/Calcutta`` -> ``Asia/Kolkata``);
    None when tzdata does not know it. ``posix/`` and ``right/`` trees are folded."""
    if not name:
        return None
    name = name.strip().removeprefix("posix/").removeprefix("right/")
    return tz_database().canonical(name)


def _zone_in_path(path: str) -> str | None:
    return known_zone(path.split(_MARKER, 1)[1]) if _MARKER in path else None


def zone_from_link(ctx: CollectionContext, link: PurePosixPath) -> str | None:
    """The zone a symlink chain such as ``/etc/localtime`` ends in, resolved in system_root.

    Links are followed by hand, a few hops at most, so that absolute targets stay inside
    ``system_root`` and a loop ends.
    """
    current = link
    for _ in range(_MAX_LINKS):
        zone = _zone_in_path(str(current))
        if zone:
            return zone
        try:
            target = PurePosixPath((ctx.system_root / current.relative_to("/")).readlink())
        except (OSError, ValueError):
            return None
        current = target if target.is_absolute() else current.parent / target
    return None


def _zone_from_file(ctx: CollectionContext, relative: str, *, key_value: bool) -> str | None:
    text = read_text(ctx.system_root / relative)
    if text is None or isinstance(text, ErrorCode):
        return None
    if key_value:
        match = _CLOCK_FILE_ZONE.search(text)
        return known_zone(match.group(1)) if match else None
    return known_zone(text.strip().splitlines()[0] if text.strip() else None)


def _zone_from_tz(ctx: CollectionContext, tz: str) -> tuple[str | None, bool]:
    """``(zone, decided)``: a TZ path that names no zone leaves the decision to the system."""
    tz = tz.removeprefix(":")
    if tz.startswith("/"):
        return zone_from_link(ctx, PurePosixPath(tz)), False
    return known_zone(tz), True


def _zone_from_registry(ctx: CollectionContext) -> str | None:
    """Windows keeps a Windows zone name; tzlocal's CLDR table maps it to IANA."""
    from tzlocal.windows_tz import win_tz

    name = ctx.registry("HKLM", _WINDOWS_ZONE_KEY, "TimeZoneKeyName")
    if not isinstance(name, str):
        return None
    name = name.split("\x00", 1)[0]  # some systems pad the value with NULs
    return known_zone(win_tz.get(name) or win_tz.get(name + " Standard Time"))


def _zone_from_command(ctx: CollectionContext, argv: tuple[str, ...]) -> str | None:
    output = ctx.run(argv)
    if not output:
        return None
    # systemsetup prints "Time Zone: Europe/Berlin"; timedatectl just the name.
    return known_zone(output.strip().rpartition(": ")[2])


def detect_zone(ctx: CollectionContext) -> tuple[str | None, str]:
    """The IANA zone name and where it came from; ``(None, "unknown")`` if nothing says."""
    tz = ctx.env.get("TZ", "")
    if tz:
        zone, decided = _zone_from_tz(ctx, tz)
        if zone or decided:
            # A TZ that is not a zone name still governs the clock: the zone is unknown.
            return zone, "TZ"
    if ctx.platform == "windows":
        zone = _zone_from_registry(ctx)
        return (zone, "registry") if zone else (None, UNKNOWN)
    zone = zone_from_link(ctx, PurePosixPath("/etc/localtime"))
    if zone:
        return zone, "/etc/localtime"
    for relative, key_value in (
        ("etc/timezone", False),
        ("etc/sysconfig/clock", True),
        ("etc/conf.d/clock", True),
    ):
        zone = _zone_from_file(ctx, relative, key_value=key_value)
        if zone:
            return zone, "/" + relative
    command, source = (
        (SYSTEMSETUP, "systemsetup") if ctx.platform == "darwin" else (TIMEDATECTL, "timedatectl")
    )
    zone = _zone_from_command(ctx, command)
    return (zone, source) if zone else (None, UNKNOWN)


def offset_and_dst(ctx: CollectionContext, zone: str | None) -> tuple[int, bool | None]:
    """Offset in minutes and DST at ``ctx.clock()``; with no zone, the process's own offset."""
    now = ctx.clock()
    if zone:
        try:  # the system's own zone data first, as the clock itself uses it
            local = now.astimezone(ZoneInfo(zone))
        except (ZoneInfoNotFoundError, ValueError, OSError):
            return tz_database().utc_offset_minutes(zone, now) or 0, None
        offset = local.utcoffset() or timedelta(0)
        dst = local.dst()
        return int(offset.total_seconds() // 60), None if dst is None else bool(dst)
    return int(ctx.local_offset(now).total_seconds() // 60), None


def collect(ctx: CollectionContext, wanted: frozenset[FieldId]) -> dict[FieldId, object]:
    """The timezone family."""
    zone, source = detect_zone(ctx)
    values: dict[FieldId, object] = {IANA: zone, SOURCE: source}
    if wanted & {OFFSET, DST}:
        values[OFFSET], values[DST] = offset_and_dst(ctx, zone)
    return {k: v for k, v in values.items() if k in wanted}


__all__ = ["collect", "detect_zone", "known_zone", "offset_and_dst", "zone_from_link"]
