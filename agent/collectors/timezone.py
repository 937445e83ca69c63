"""Timezone collector: IANA zone (tzlocal), its source, UTC offset and DST now."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.collectors import CollectionContext
from attest.catalog import FieldId


def _zone_from_localtime(ctx: CollectionContext) -> str | None:
    """``/etc/localtime`` is a link into the zoneinfo tree on Linux and macOS."""
    link = ctx.system_root / "etc" / "localtime"
    try:
        target = str(link.readlink())
    except OSError:
        return None
    marker = "zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else None


def _zone_from_etc_timezone(ctx: CollectionContext) -> str | None:
    try:
        text = (ctx.system_root / "etc" / "timezone").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text or None


def _zone_from_registry(ctx: CollectionContext) -> tuple[str | None, str]:
    """Windows keeps a Windows zone name; tzlocal's CLDR table maps it to IANA."""
    from tzlocal.windows_tz import win_tz

    key = r"SYSTEM\CurrentControlSet\Control\TimeZoneInformation"
    name = ctx.registry("HKLM", key, "TimeZoneKeyName")
    if isinstance(name, str) and name.strip("\x00") in win_tz:
        return win_tz[name.strip("\x00")], "registry"
    return None, "unknown"


def detect_zone(ctx: CollectionContext) -> tuple[str | None, str]:
    """The IANA zone name and where it came from; ``(None, "unknown")`` if nothing says."""
    tz = ctx.env.get("TZ", "").lstrip(":")
    if tz:
        return tz, "TZ"
    if ctx.platform == "windows":
        return _zone_from_registry(ctx)
    zone = _zone_from_localtime(ctx)
    if zone:
        return zone, "/etc/localtime"
    zone = _zone_from_etc_timezone(ctx)
    if zone:
        return zone, "/etc/timezone"
    return None, "unknown"


def _offset_and_dst(zone: str | None, now: datetime) -> tuple[int, bool | None]:
    if zone:
        try:
            local = now.astimezone(ZoneInfo(zone))
        except (ZoneInfoNotFoundError, ValueError):
            local = None
        if local is not None:
            offset = local.utcoffset() or timedelta(0)
            dst = local.dst()
            return int(offset.total_seconds() // 60), None if dst is None else bool(dst)
    offset = now.astimezone().utcoffset() or timedelta(0)
    return int(offset.total_seconds() // 60), None


def collect(ctx: CollectionContext, wanted: frozenset[FieldId]) -> dict[FieldId, object]:
    """The timezone family."""
    zone, source = detect_zone(ctx)
    offset, dst = _offset_and_dst(zone, ctx.clock())
    values: dict[FieldId, object] = {
        FieldId("timezone.iana"): zone,
        FieldId("timezone.source"): source,
        FieldId("timezone.utc_offset_minutes"): offset,
        FieldId("timezone.dst"): dst,
    }
    return {k: v for k, v in values.items() if k in wanted}
