"""Server configuration: ``<data-dir>/server.toml``, written by ``init`` and editable."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from server.errors import ConfigError

CONFIG_FILE = "server.toml"


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``serve`` needs, resolved to absolute paths."""

    data_dir: Path
    issuer: str = "envattest"
    database_url: str = ""
    manifest_file: str = "manifest.json"
    policy_file: str = "policy.toml"
    tpm_roots: str = ""
    nonce_ttl_s: int = 120
    enrollment_ttl_s: int = 300
    max_body_bytes: int = 64 * 1024
    max_iat_skew_s: int = 300
    rate_limit_per_minute: int = 600  # per client IP, per replica; 0 disables
    device_rate_limit_per_minute: int = 120  # per device (challenge + attest); 0 disables
    authz_audience: str = ""  # when set, /v1/authz and /v1/introspect require this aud
    authz_external_url: str = ""  # the gateway's external base URL: DPoP htu = this + path
    dpop_max_age_s: int = 60  # a DPoP proof is accepted this long after its iat
    dpop_nonce_ttl_s: int = 0  # > 0: proofs must carry a server nonce rotated this often
    token_check: str = "standard"  # noqa: S105 - "strict": a token's jti must match an audited allow
    usage_flush_s: int = 10  # forward-auth usage is written to the database this often
    body_timeout_s: int = 10  # a body not complete this long after the request head: 408
    trusted_proxies: tuple[str, ...] = ()  # CIDRs whose X-Forwarded-For is believed

    @property
    def manifest_path(self) -> Path:
        """The manifest file served at /v1/manifest."""
        return self.data_dir / self.manifest_file

    @property
    def policy_path(self) -> Path:
        """The policy file."""
        return self.data_dir / self.policy_file

    @property
    def keys_dir(self) -> Path:
        """Token-signing keys."""
        return self.data_dir / "keys"

    @property
    def tpm_roots_dir(self) -> Path | None:
        """Trusted TPM vendor roots, if TPM enrollment is enabled."""
        return (self.data_dir / self.tpm_roots) if self.tpm_roots else None

    @property
    def resolved_database_url(self) -> str:
        """The database URL; SQLite in the data directory by default."""
        return self.database_url or f"sqlite:///{self.data_dir / 'envattest.db'}"


def load_config(data_dir: Path, **overrides: Any) -> ServerConfig:
    """Read ``server.toml`` from ``data_dir``; keyword overrides win (None means not given)."""
    path = data_dir / CONFIG_FILE
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path} not found: run 'envattest-server init --data-dir {data_dir}' first"
        ) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    names = {f.name for f in fields(ServerConfig)} - {"data_dir"}
    unknown = set(doc) - names
    if unknown:
        raise ConfigError(f"{path}: unknown settings {', '.join(sorted(unknown))}")
    config = ServerConfig(data_dir=data_dir.resolve())
    for name, value in {**doc, **{k: v for k, v in overrides.items() if v is not None}}.items():
        expected = type(getattr(config, name))
        if expected is tuple and isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = tuple(value)
        if not isinstance(value, expected) or isinstance(value, bool):
            raise ConfigError(f"{path}: {name} must be a {expected.__name__}")
        config = replace(config, **{name: value})
    return config
