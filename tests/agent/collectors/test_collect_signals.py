"""collect_signals: exactly the wanted fields, and nothing read for fields not wanted."""

from __future__ import annotations

import json
from dataclasses import replace
from itertools import combinations
from pathlib import Path

import pytest

from agent.collectors import CollectionContext, collect_signals, configfiles
from attest.catalog import CATALOG, Family, FieldId, fields_of

from .conftest import Recording

RECORDINGS = ("linux", "macos", "windows", "hostile")


@pytest.fixture
def no_file_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any configuration file is read."""

    def refuse(path: Path, **_: object) -> None:
        pytest.fail(f"file read although no field needs it: {path.name}")

    monkeypatch.setattr(configfiles, "read_capped", refuse)


@pytest.mark.parametrize("name", RECORDINGS)
@pytest.mark.parametrize("family", list(Family))
def test_each_family_alone_gives_exactly_its_fields(
    recording: Recording, name: str, family: Family
) -> None:
    ctx, _ = recording(name)
    wanted = {f.id for f in fields_of(family)}
    assert set(collect_signals(ctx, wanted)) == wanted


@pytest.mark.parametrize("name", RECORDINGS)
def test_every_single_field_and_pairs_give_exactly_those(recording: Recording, name: str) -> None:
    ctx, _ = recording(name)
    ids = sorted(CATALOG)
    for wanted in [*combinations(ids, 1), *combinations(ids[::3], 2)]:
        assert set(collect_signals(ctx, wanted)) == set(wanted)


def test_unknown_names_are_ignored(recording: Recording) -> None:
    ctx, _ = recording("linux")
    assert collect_signals(ctx, ["proxy.env", "proxy.passwords", "nonsense"]).keys() == {
        "proxy.env"
    }
    assert collect_signals(ctx, []) == {}


@pytest.mark.usefixtures("no_file_reads")
def test_environment_fields_read_no_file_run_no_command(
    recording: Recording,
    forbidden_run: object,
    forbidden_registry: object,
    forbidden_interfaces: object,
) -> None:
    ctx, _ = recording(
        "linux", run=forbidden_run, registry=forbidden_registry, interfaces=forbidden_interfaces
    )
    values = collect_signals(ctx, ["proxy.env", "proxy.no_proxy", "baseurl.env"])
    assert [len(v) for v in values.values()] == [3, 6, 4]  # type: ignore[arg-type]


@pytest.mark.usefixtures("no_file_reads")
def test_tunnels_alone_only_list_interfaces(
    recording: Recording, forbidden_run: object, forbidden_registry: object
) -> None:
    ctx, _ = recording("windows", run=forbidden_run, registry=forbidden_registry)
    tunnels = collect_signals(ctx, ["proxy.tunnels"])[FieldId("proxy.tunnels")]
    assert isinstance(tunnels, list)
    assert len(tunnels) == 5


@pytest.mark.usefixtures("no_file_reads")
@pytest.mark.parametrize("name", ["macos", "windows"])
def test_os_proxy_fields_read_no_file(recording: Recording, name: str) -> None:
    ctx, _ = recording(name)
    wanted = ["proxy.os", "proxy.pac", "proxy.auto_detect"]
    assert set(collect_signals(ctx, wanted)) == set(wanted)


def test_os_proxy_fields_on_linux_read_only_kioslaverc(
    recording: Recording, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, _ = recording("linux")
    read: list[str] = []
    real = configfiles.read_capped

    def spy(path: Path, **kwargs: int) -> bytes | configfiles.ErrorCode | None:
        read.append(path.name)
        return real(path, **kwargs)

    monkeypatch.setattr(configfiles, "read_capped", spy)
    collect_signals(ctx, ["proxy.os", "proxy.pac", "proxy.auto_detect"])
    assert read == ["kioslaverc"]


def test_no_os_proxy_field_runs_no_command(
    recording: Recording, forbidden_run: object, forbidden_registry: object
) -> None:
    for name in ("linux", "macos", "windows"):
        ctx, _ = recording(name, run=forbidden_run, registry=forbidden_registry)
        ctx = replace(ctx, env={**ctx.env, "TZ": "Europe/Berlin"})  # timezone needs no command
        wanted = [f for f in CATALOG if f not in ("proxy.os", "proxy.pac", "proxy.auto_detect")]
        assert set(collect_signals(ctx, wanted)) == set(wanted)


def test_timezone_from_tz_reads_nothing_else(
    empty_context: CollectionContext, no_file_reads: None
) -> None:
    ctx = replace(empty_context, env={"TZ": "Asia/Tokyo"})
    assert collect_signals(ctx, [f.id for f in fields_of(Family.TIMEZONE)]) == {
        FieldId("timezone.iana"): "Asia/Tokyo",
        FieldId("timezone.source"): "TZ",
        FieldId("timezone.utc_offset_minutes"): 540,
        FieldId("timezone.dst"): False,
    }


@pytest.mark.parametrize("name", RECORDINGS)
def test_everything_is_json_and_carries_no_secret_or_path(recording: Recording, name: str) -> None:
    ctx, _ = recording(name)
    text = json.dumps(collect_signals(ctx, CATALOG))
    forbidden = (
        "alice", "hunter2", "s3cret", "bob", "carol", "NEVERSENT", "SECRET", "TOKEN",
        "api_key", "token=", "user=", "/v1", "/home", str(ctx.home), str(ctx.system_root),
        "/proxy.pac", "wpad.dat", "sk-",
    )  # fmt: skip
    assert [s for s in forbidden if s in text] == []
