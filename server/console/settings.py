"""``[console]`` in ``server.toml``.

[console]
session_ttl_s = 28800          # a session lasts this long (8 hours), then sign in again
sign_in_per_minute = 5         # attempts per account and per client address
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from server.errors import ConfigError

_RANGES = {"session_ttl_s": (60, 7 * 86_400), "sign_in_per_minute": (1, 600)}


@dataclass(frozen=True)
class ConsoleSettings:
    """How the console treats sessions and sign-in attempts."""

    session_ttl_s: int = 8 * 3600
    sign_in_per_minute: int = 5


def parse_console_settings(doc: Mapping[str, Any]) -> ConsoleSettings:
    """Validate ``[console]``; errors name the setting and its allowed range."""
    unknown = set(doc) - set(_RANGES)
    if unknown:
        raise ConfigError(f"server.toml [console]: unknown settings {', '.join(sorted(unknown))}")
    values: dict[str, int] = {}
    for key, (low, high) in _RANGES.items():
        value = doc.get(key, getattr(ConsoleSettings, key))
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ConfigError(f"server.toml [console] {key}: an integer from {low} to {high}")
        values[key] = value
    return ConsoleSettings(**values)
