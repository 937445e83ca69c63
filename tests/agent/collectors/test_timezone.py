"""Timezone: sources in order, values from zoneinfo at the injected clock, unknown as a value."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.collectors import CollectionContext
from agent.collectors.timezone import TIMEDATECTL, collect, detect_zone
from attest.catalog import CATALOG, Family, FieldId

from .conftest import Recording
from .support import runner_of, write

ALL = frozenset(f.id for f in CATALOG.values() if f.family is Family.TIMEZONE)


def test_linux_recording(recording: Recording) -> None:
    ctx, runner = recording("linux")
    assert collect(ctx, ALL) == {
        "timezone.iana": "Europe/Berlin",
        "timezone.source": "/etc/localtime",
        "timezone.utc_offset_minutes": 120,
        "timezone.dst": True,
    }
    assert TIMEDATECTL not in runner.calls  # a file answered: no command


def test_macos_recording_follows_an_absolute_link_inside_system_root(recording: Recording) -> None:
    ctx, runner = recording("macos")
    assert detect_zone(ctx) == ("America/New_York", "/etc/localtime")
    assert runner.calls == []


def test_windows_recording_maps_the_registry_name(recording: Recording) -> None:
    ctx, _ = recording("windows")
    assert collect(ctx, ALL) == {
        "timezone.iana": "Europe/Berlin",
        "timezone.source": "registry",
        "timezone.utc_offset_minutes": 120,
        "timezone.dst": True,
    }


def test_winter_offset_and_no_dst(recording: Recording) -> None:
    ctx, _ = recording("linux", clock=lambda: datetime(2026, 1, 15, 12, tzinfo=UTC))
    wanted = frozenset({FieldId("timezone.utc_offset_minutes"), FieldId("timezone.dst")})
    assert collect(ctx, wanted) == {"timezone.utc_offset_minutes": 60, "timezone.dst": False}


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        ("Asia/Kolkata", ("Asia/Kolkata", "TZ")),
        (":America/Sao_Paulo", ("America/Sao_Paulo", "TZ")),
        ("/usr/share/zoneinfo/Pacific/Auckland", ("Pacific/Auckland", "TZ")),
        # Backward links are sent by their canonical tzdata name.
        ("UTC", ("Etc/UTC", "TZ")),
        ("Asia/Calcutta", ("Asia/Kolkata", "TZ")),
        ("US/Pacific", ("America/Los_Angeles", "TZ")),
        ("/usr/share/zoneinfo/posix/US/Pacific", ("America/Los_Angeles", "TZ")),
        # A TZ the zoneinfo database does not know still governs the clock: zone unknown,
        # and never echoed (it could be a private path or anything else).
        ("CET-1CEST,M3.5.0,M10.5.0/3", (None, "TZ")),
        ("../../home/alice/secret", (None, "TZ")),
    ],
)
def test_tz_comes_first(empty_context: CollectionContext, tz: str, expected: object) -> None:
    write(empty_context.system_root / "etc" / "timezone", "Europe/Berlin\n")
    ctx = replace(empty_context, env={"TZ": tz})
    assert detect_zone(ctx) == expected


def test_tz_path_that_names_no_zone_defers_to_the_system(empty_context: CollectionContext) -> None:
    etc = empty_context.system_root / "etc"
    etc.mkdir()
    (etc / "localtime").symlink_to("/usr/share/zoneinfo/Europe/Lisbon")
    ctx = replace(empty_context, env={"TZ": ":/etc/localtime"})
    assert detect_zone(ctx) == ("Europe/Lisbon", "TZ")
    ctx = replace(empty_context, env={"TZ": "/nonexistent/file"})
    assert detect_zone(ctx) == ("Europe/Lisbon", "/etc/localtime")


def test_link_chain_and_posix_tree(empty_context: CollectionContext) -> None:
    etc = empty_context.system_root / "etc"
    (etc / "alternatives").mkdir(parents=True)
    (etc / "alternatives" / "tz").symlink_to("/usr/share/zoneinfo/posix/Asia/Tokyo")
    (etc / "localtime").symlink_to("alternatives/tz")
    assert detect_zone(empty_context) == ("Asia/Tokyo", "/etc/localtime")


def test_link_loop_ends(empty_context: CollectionContext) -> None:
    etc = empty_context.system_root / "etc"
    etc.mkdir()
    (etc / "localtime").symlink_to("/etc/other")
    (etc / "other").symlink_to("/etc/localtime")
    ctx = replace(empty_context, run=runner_of({}))
    assert detect_zone(ctx) == (None, "unknown")


@pytest.mark.parametrize(
    ("relative", "text", "source"),
    [
        ("etc/timezone", "Europe/Paris\n", "/etc/timezone"),
        ("etc/sysconfig/clock", 'ZONE="Europe/Paris"\nUTC=true\n', "/etc/sysconfig/clock"),
        ("etc/conf.d/clock", 'TIMEZONE="Europe/Paris"\n', "/etc/conf.d/clock"),
    ],
)
def test_distribution_files(
    empty_context: CollectionContext, relative: str, text: str, source: str
) -> None:
    write(empty_context.system_root / relative, text)
    assert detect_zone(empty_context) == ("Europe/Paris", source)


def test_localtime_copy_falls_back_to_etc_timezone(empty_context: CollectionContext) -> None:
    write(empty_context.system_root / "etc" / "localtime", b"TZif2\x00\x00")
    write(empty_context.system_root / "etc" / "timezone", "Africa/Nairobi\n")
    assert detect_zone(empty_context) == ("Africa/Nairobi", "/etc/timezone")


def test_timedatectl_only_when_nothing_else(empty_context: CollectionContext) -> None:
    ctx = replace(empty_context, run=runner_of({TIMEDATECTL: "America/Chicago\n"}))
    assert detect_zone(ctx) == ("America/Chicago", "timedatectl")


def test_systemsetup_on_macos_and_its_refusal(recording: Recording, tmp_path: Path) -> None:
    ctx, _ = recording("macos", system_root=tmp_path)
    assert detect_zone(ctx) == ("America/New_York", "systemsetup")
    denied = "You need administrator access to run this tool... exiting!\n"
    ctx = replace(ctx, run=runner_of({("systemsetup", "-gettimezone"): denied}))
    assert detect_zone(ctx) == (None, "unknown")


def test_unknown_zone_is_a_value_with_the_process_offset(empty_context: CollectionContext) -> None:
    ctx = replace(
        empty_context, run=runner_of({}), local_offset=lambda _now: timedelta(hours=-3, minutes=-30)
    )
    assert collect(ctx, ALL) == {
        "timezone.iana": None,
        "timezone.source": "unknown",
        "timezone.utc_offset_minutes": -210,
        "timezone.dst": None,
    }


@pytest.mark.parametrize("name", ["Not A Zone", "W. Europe Standard Time", 7, None])
def test_windows_registry_unknown_names(empty_context: CollectionContext, name: object) -> None:
    values = {"W. Europe Standard Time": "Mars Standard Time"}
    registry_value = values.get(name, name) if isinstance(name, str) else name
    ctx = replace(
        empty_context, platform="windows", registry=lambda hive, key, value: registry_value
    )
    assert detect_zone(ctx) == (None, "unknown")
