"""Charts as SVG drawn on the server by pygal: no script, no external reference (pygal's
tooltip script is turned off), served as images from the console's own origin."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pygal
from pygal.style import Style

from server.store.fleet_queries import Overview

_STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#222",
    foreground_strong="#111",
    foreground_subtle="#888",
    colors=("#2e7d32", "#c62828", "#6d4c41", "#1565c0", "#f9a825", "#6a1b9a"),
    font_family="sans-serif",
)
_COMMON = {"style": _STYLE, "js": [], "width": 720, "height": 300, "explicit_size": True,
           "show_legend": True, "legend_at_bottom": True, "print_values": False}  # fmt: skip


def decisions_chart(overview: Overview, *, days: Sequence[int]) -> bytes:
    """Allow / deny / reject per day, stacked."""
    chart = pygal.StackedBar(**_COMMON, title="Decisions per day (UTC)", x_label_rotation=30)
    chart.x_labels = [datetime.fromtimestamp(d, UTC).strftime("%m-%d") for d in days]
    counts = {(day, dec): n for day, dec, n in overview.daily}
    for decision in ("allow", "deny", "reject"):
        chart.add(decision, [counts.get((d, decision), 0) for d in days])
    return bytes(chart.render())


def key_class_chart(overview: Overview) -> bytes:
    """Active devices by key class."""
    chart = pygal.Bar(**_COMMON, title="Active devices by key class")
    for (key_class, state), n in sorted(overview.by_key_class.items()):
        if state == "active":
            chart.add(key_class, [n])
    return bytes(chart.render())


def distribution_chart(title: str, rows: Sequence[tuple[str, str, int]]) -> bytes:
    """Devices per value of one field (the top values), as horizontal bars."""
    chart = pygal.HorizontalBar(**{**_COMMON, "show_legend": False}, title=title)
    top = list(rows)[:12]
    chart.x_labels = [f"{v} ({d})" if d else v for v, d, _ in reversed(top)]
    chart.add("devices", [n for _, _, n in reversed(top)])
    return bytes(chart.render())
