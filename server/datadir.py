"""``envattest-server init``: a data directory with keys, database, manifest and policy."""

from __future__ import annotations

import time
from pathlib import Path

from attest.catalog import CATALOG, Family
from attest.catalog.observed import OBSERVED
from attest.manifest import FieldMode, render_manifest
from attest.privatefile import ensure_private_dir, write_private_atomic
from server.audit.checkpoints import CheckpointSigner
from server.config import CONFIG_FILE, ServerConfig, load_config
from server.errors import ConfigError
from server.nonces import load_nonce_key
from server.store.migrate import upgrade
from server.store.sql import make_engine
from server.tokens import KeyRing

DEFAULT_RETENTION_DAYS = 30

_PURPOSES = {
    Family.TIMEZONE: "Confirms the region the machine's clock is set to, for the "
    "organisation's data-residency and access rules.",
    Family.PROXY: "Shows whether traffic to the AI service leaves through an approved "
    "proxy or tunnel, or through an unknown relay.",
    Family.BASEURL: "Shows which API endpoints coding tools are pointed at, so traffic to "
    "unapproved relays or resellers can be refused.",
}
_ENFORCED = frozenset(
    {
        "timezone.iana",
        "timezone.utc_offset_minutes",
        "proxy.env",
        "proxy.os",
        "proxy.tools",
        "baseurl.env",
        "baseurl.tools",
    }
)


_OBSERVED_PURPOSES = {
    "usage.requests": "Detects a token used at a rate one developer does not produce: a "
    "shared or resold token.",
    "usage.client_networks": "Detects one token used from many networks: a token passed on "
    "to others.",
}


def default_manifest(verifier: str) -> bytes:
    """A manifest requesting every catalog field with a stated purpose and retention, and
    declaring the verifier-observed usage fields forward auth records."""
    entries = [
        {
            "id": field.id,
            "purpose": _PURPOSES[field.family],
            "retention_days": DEFAULT_RETENTION_DAYS,
            "mode": (FieldMode.ENFORCE if field.id in _ENFORCED else FieldMode.REPORT).value,
        }
        for field in CATALOG.values()
    ]
    observed = [
        {"id": field_id, "purpose": _OBSERVED_PURPOSES[field_id], "retention_days": 30}
        for field_id in OBSERVED
    ]
    return render_manifest(verifier, entries, observed)


DEFAULT_POLICY_TOML = """\
# The neutral default policy written by 'envattest-server init': the same rules as the
# built-in default (server.policy.defaults). Edit it for your organisation, check it with
# 'envattest-server policy check FILE', then reload a running server with SIGHUP.
# Examples: server/examples/policy-*.toml.

[policy]
version = "default-1"
description = "Default: any key class, the manifest's enforce fields, bounded clock skew"

[token]
ttl_s = 900
audience = "envattest"

[rules.key_class]
mode = "enforce"
allowed = ["tpm2", "hardware-unverified", "software"]

[rules.clock_skew]
mode = "enforce"
max_skew_s = 300

[rules.required_fields]
mode = "enforce"
"""


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def init_data_dir(
    data_dir: Path, *, issuer: str, database_url: str = "", policy_text: str | None = None
) -> ServerConfig:
    """Create everything ``serve`` needs; refuses to overwrite an existing data directory.

    ``policy_text`` defaults to ``DEFAULT_POLICY_TOML``."""
    if (data_dir / CONFIG_FILE).exists():
        raise ConfigError(f"{data_dir} is already initialised ({CONFIG_FILE} exists)")
    ensure_private_dir(data_dir)
    lines = [f"issuer = {_toml_string(issuer)}"]
    if database_url:
        lines.append(f"database_url = {_toml_string(database_url)}")
    write_private_atomic(data_dir / CONFIG_FILE, ("\n".join(lines) + "\n").encode())
    config = load_config(data_dir)
    KeyRing.create_key(config.keys_dir, now=int(time.time()))
    CheckpointSigner.load(config.audit_checkpoint_key_path, create=True)
    load_nonce_key(config.keys_dir)
    write_private_atomic(config.manifest_path, default_manifest(f"envattest verifier {issuer}"))
    policy = DEFAULT_POLICY_TOML if policy_text is None else policy_text
    write_private_atomic(config.policy_path, policy.encode())
    engine = make_engine(config.resolved_database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return config
