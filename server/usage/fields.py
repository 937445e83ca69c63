"""Verifier-observed usage and the manifest: recorded only when declared, kept as long as
the manifest says."""

from __future__ import annotations

from attest.catalog.observed import OBSERVED
from attest.manifest import Manifest
from server.errors import ConfigError
from server.policy import Policy
from server.policy.usage import UsageRule

DEFAULT_RETENTION_DAYS = 30


def observed_retention_days(manifest: Manifest) -> int:
    """The longest retention the manifest states for a verifier-observed field."""
    days = [entry.retention_days for entry in manifest.observed]
    return max(days) if days else DEFAULT_RETENTION_DAYS


def check_usage_disclosed(policy: Policy, manifest: Manifest) -> None:
    """A policy with usage rules needs a manifest that declares the usage it records: the
    verifier observes nothing the user was not shown."""
    if not any(isinstance(rule, UsageRule) for rule in policy.rules):
        return
    declared = {entry.field.id for entry in manifest.observed}
    missing = sorted(set(OBSERVED) - declared)
    if missing:
        raise ConfigError(
            f"the policy has [rules.usage] but the manifest does not declare {', '.join(missing)}"
            " under 'observed' (purpose, retention_days): add them so users see them at consent"
        )


def usage_disclosed(manifest: Manifest) -> bool:
    """Whether forward auth may record usage: only what the manifest declares."""
    declared = {entry.field.id for entry in manifest.observed}
    return set(OBSERVED) <= declared
