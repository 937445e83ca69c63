"""``[alerts]`` and ``[[alerts.webhook]]`` in ``server.toml``, parsed once at start.

[alerts]
allow_run = 3          # a deny after this many allows in a row alerts
max_attempts = 8       # then the delivery is marked failed (console, metrics)
retry_base_s = 5       # back-off: 5, 10, 20, ... seconds, at most retry_max_s
retry_max_s = 600

[[alerts.webhook]]
name = "secops"
url = "https://hooks.slack.com/services/..."
format = "slack"       # or "signed": generic JSON with an HMAC-SHA256 signature
secret_file = "alert-webhook.key"   # "signed" only; relative to the data directory
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from server.errors import ConfigError

WebhookFormat = Literal["slack", "signed"]
_FORMATS = ("slack", "signed")
_INTS = {
    "allow_run": (1, 1000),
    "max_attempts": (1, 100),
    "retry_base_s": (1, 3600),
    "retry_max_s": (1, 86_400),
}


@dataclass(frozen=True)
class Webhook:
    """One receiver."""

    name: str
    url: str
    format: WebhookFormat
    secret: bytes = b""


@dataclass(frozen=True)
class AlertSettings:
    """Everything the alert worker needs."""

    webhooks: tuple[Webhook, ...] = ()
    allow_run: int = 3
    max_attempts: int = 8
    retry_base_s: int = 5
    retry_max_s: int = 600
    targets: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(w.name for w in self.webhooks))

    def backoff_s(self, attempts: int) -> int:
        """Delay before the next attempt after ``attempts`` failed ones."""
        return int(min(self.retry_max_s, self.retry_base_s * 2 ** max(0, attempts - 1)))


def _webhook(doc: Any, index: int, data_dir: Path) -> Webhook:
    where = f"server.toml [[alerts.webhook]] #{index + 1}"
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{where}: must be a table with name, url and format")
    unknown = set(doc) - {"name", "url", "format", "secret_file"}
    if unknown:
        raise ConfigError(f"{where}: unknown settings {', '.join(sorted(unknown))}")
    name, url, fmt = doc.get("name"), doc.get("url"), doc.get("format", "slack")
    if not isinstance(name, str) or not name or len(name) > 64:
        raise ConfigError(f"{where}: name must be a string of 1-64 characters")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"{where}: url must be an http(s) URL")
    if fmt not in _FORMATS:
        raise ConfigError(f"{where}: format must be one of {', '.join(_FORMATS)}")
    secret = b""
    if fmt == "signed":
        secret_file = doc.get("secret_file")
        if not isinstance(secret_file, str) or not secret_file:
            raise ConfigError(f"{where}: format 'signed' needs secret_file (the HMAC key)")
        try:
            secret = (data_dir / secret_file).read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read secret_file: {exc}") from exc
        if len(secret) < 16:
            raise ConfigError(f"{where}: the secret in {secret_file} must be at least 16 bytes")
    return Webhook(name, url, fmt, secret)


def parse_alert_settings(doc: Mapping[str, Any], data_dir: Path) -> AlertSettings:
    """Validate the ``[alerts]`` table; errors name the setting and say what is expected."""
    unknown = set(doc) - {"webhook", *_INTS}
    if unknown:
        raise ConfigError(f"server.toml [alerts]: unknown settings {', '.join(sorted(unknown))}")
    ints: dict[str, int] = {}
    for key, (low, high) in _INTS.items():
        value = doc.get(key, getattr(AlertSettings, key))
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ConfigError(f"server.toml [alerts] {key}: an integer from {low} to {high}")
        ints[key] = value
    hooks = doc.get("webhook", [])
    if not isinstance(hooks, list):
        raise ConfigError("server.toml: write webhooks as [[alerts.webhook]] tables")
    webhooks = tuple(_webhook(h, i, data_dir) for i, h in enumerate(hooks))
    if len({w.name for w in webhooks}) != len(webhooks):
        raise ConfigError("server.toml [[alerts.webhook]]: names must be unique")
    return AlertSettings(webhooks=webhooks, **ints)
