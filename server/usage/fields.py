"""Retention of verifier-observed usage, as the manifest states it."""

from __future__ import annotations

from attest.manifest import Manifest

DEFAULT_RETENTION_DAYS = 30


def observed_retention_days(manifest: Manifest) -> int:
    """The longest retention the manifest states for a verifier-observed field."""
    observed = getattr(manifest, "observed", ())
    days = [entry.retention_days for entry in observed]
    return max(days) if days else DEFAULT_RETENTION_DAYS
