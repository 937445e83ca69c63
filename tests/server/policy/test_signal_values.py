"""Closed, bounded signal shapes: each vector under tests/vectors/signals is refused, naming
the field and the member that broke the shape; everything the agent itself sends fits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.collectors import collect_signals
from agent.collectors.recorded import load_recording
from attest.catalog import CATALOG, FieldId
from server.signals import SignalValueError, check_signal_values

ROOT = Path(__file__).resolve().parents[2]
VECTORS = sorted((ROOT / "vectors" / "signals").glob("*.json"))
RECORDINGS = ROOT / "fixtures" / "collectors"


@pytest.mark.parametrize("vector", VECTORS, ids=[v.stem for v in VECTORS])
def test_malformed_signal_is_refused_at_its_member(vector: Path) -> None:
    case = json.loads(vector.read_text(encoding="utf-8"))
    field = FieldId(case["field"])
    with pytest.raises(SignalValueError) as refused:
        check_signal_values({field: case["value"]})
    message = str(refused.value)
    assert message.startswith(f"{field} ")
    if case["location"]:
        assert f"first at {case['location']}:" in message


def test_there_are_vectors_for_every_kind_of_break() -> None:
    assert len(VECTORS) >= 30


def test_the_same_values_without_the_break_are_accepted() -> None:
    check_signal_values({fid: f.example for fid, f in CATALOG.items()})
    check_signal_values({FieldId("proxy.tunnels"): [{"name": "wg0", "kind": "wireguard"}] * 256})


@pytest.mark.parametrize("machine", ["linux", "macos", "windows", "hostile"])
def test_everything_the_agent_collects_fits_the_closed_shapes(machine: str) -> None:
    ctx, _ = load_recording(RECORDINGS / machine)
    check_signal_values(collect_signals(ctx, CATALOG))
