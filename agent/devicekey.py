"""Choosing, creating and loading the device key provider.

``auto`` picks the strongest provider usable here and says which and why; it falls back to
a software key only when the user allowed it, so nobody gets a weaker key by surprise.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from agent.errors import StateError
from agent.home import AgentHome, Enrollment
from attest.errors import KeyProviderError
from attest.keys import KeyProvider, ProviderName
from attest.keys.software import SoftwareKey


@dataclass(frozen=True)
class KeyChoice:
    """The provider picked and why."""

    provider: ProviderName
    reason: str


def choose_provider(
    requested: str, *, allow_fallback: bool, tcti: str | None, announce: Callable[[str], None]
) -> KeyChoice:
    """Resolve ``--key``; ``auto`` tries hardware first."""
    if requested != "auto":
        return KeyChoice(ProviderName(requested), "requested with --key")
    hardware_reasons = []
    try:
        from attest.keys.tpm2 import probe_tpm2

        probe = probe_tpm2(tcti)
        if probe.available:
            return KeyChoice(ProviderName.TPM2, f"TPM 2.0 available ({probe.reason})")
        hardware_reasons.append(f"tpm2: {probe.reason}")
    except ImportError:
        how = (
            "this binary was built without TPM support (packaging/build.sh --with-tpm)"
            if getattr(sys, "frozen", False)
            else "TPM support not installed (pip install 'envattest[tpm]')"
        )
        hardware_reasons.append(f"tpm2: {how}")
    why = "; ".join(hardware_reasons)
    if not allow_fallback:
        raise KeyProviderError(
            f"no hardware-backed key is usable here ({why}); fix that, or pass "
            "--allow-software-fallback (or --key software) to use a software key, which the "
            "verifier will record as 'software'"
        )
    announce(f"no hardware-backed key is usable here: {why}")
    return KeyChoice(ProviderName.SOFTWARE, "software fallback allowed by the user")


def create_key(home: AgentHome, provider: ProviderName, *, tcti: str | None) -> KeyProvider:
    """Create a new device key with ``provider``."""
    if provider is ProviderName.SOFTWARE:
        return SoftwareKey.create(home.key_path)
    if provider is ProviderName.TPM2:
        from attest.keys.tpm2 import Tpm2Key

        return Tpm2Key.create(home.tpm_dir, tcti=tcti)
    raise KeyProviderError(
        f"the {provider.value} provider is not available on this platform; use --key auto"
    )


def load_key(home: AgentHome, enrollment: Enrollment) -> KeyProvider:
    """Load the enrolled device key."""
    try:
        provider = ProviderName(enrollment.key_provider)
    except ValueError:
        raise StateError(
            f"unknown key provider {enrollment.key_provider!r} in {home.enrollment_path}"
        ) from None
    if provider is ProviderName.SOFTWARE:
        return SoftwareKey.load(home.key_path)
    if provider is ProviderName.TPM2:
        from attest.keys.tpm2 import Tpm2Key

        return Tpm2Key.load(home.tpm_dir, tcti=enrollment.tcti)
    raise KeyProviderError(f"the {provider.value} provider is not available on this platform")
