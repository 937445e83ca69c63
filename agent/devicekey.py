"""Choosing, creating and loading the device key provider.

``auto`` picks the strongest provider usable here and says which and why; it falls back to
a software key only when the user allowed it, so nobody gets a weaker key by surprise.

Every provider named by ``--key`` reaches its real code: ``tpm2`` through tpm2-pytss,
``windows-pcp`` through CNG (Windows only), ``secure-enclave`` through the signed Swift helper
(macOS; ``ENVATTEST_SE_HELPER`` names the helper when it is not on PATH).
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.errors import StateError
from agent.home import AgentHome, Enrollment
from attest.errors import KeyProviderError
from attest.keys import KeyProvider, ProviderName
from attest.keys.software import SoftwareKey

SE_HELPER_ENV = "ENVATTEST_SE_HELPER"
SE_KEY_FILE = "secure-enclave-key.json"


@dataclass(frozen=True)
class KeyChoice:
    """The provider picked and why."""

    provider: ProviderName
    reason: str


@dataclass(frozen=True)
class Platform:
    """What ``auto`` looks at: the OS and the environment (injected by tests)."""

    system: str = sys.platform
    environ: Mapping[str, str] | None = None

    def env(self) -> Mapping[str, str]:
        """The environment to read provider settings from."""
        return os.environ if self.environ is None else self.environ


def _se_helper(platform: Platform) -> Path | None:
    explicit = platform.env().get(SE_HELPER_ENV)
    return Path(explicit) if explicit else None


def _pcp_key_name(home: AgentHome) -> str:
    digest = hashlib.sha256(str(home.root.resolve()).encode()).hexdigest()[:16]
    return f"envattest-device-key-{digest}"


def _probe_tpm2(tcti: str | None) -> str | None:
    """None if a TPM is usable, else why not."""
    try:
        from attest.keys.tpm2 import probe_tpm2
    except ImportError:
        if getattr(sys, "frozen", False):
            return "this binary was built without TPM support (packaging/build.sh --with-tpm)"
        return "TPM support not installed (pip install 'envattest[tpm]')"
    probe = probe_tpm2(tcti)
    return None if probe.available else probe.reason


def _probe_windows_pcp() -> str | None:
    from attest.keys.windows_pcp import CngPcpBackend

    try:
        CngPcpBackend()
    except (KeyProviderError, OSError) as exc:
        return str(exc)
    return None


def _probe_secure_enclave(platform: Platform) -> str | None:
    from attest.keys.secure_enclave import SubprocessHelper

    try:
        helper = SubprocessHelper.find(_se_helper(platform))
    except KeyProviderError as exc:
        return str(exc)
    if not os.access(helper.executable, os.X_OK):
        return f"{helper.executable} ({SE_HELPER_ENV}) is not an executable helper"
    return None


def choose_provider(
    requested: str,
    *,
    allow_fallback: bool,
    tcti: str | None,
    announce: Callable[[str], None],
    platform: Platform | None = None,
) -> KeyChoice:
    """Resolve ``--key``; ``auto`` tries this platform's hardware providers first."""
    if requested != "auto":
        return KeyChoice(ProviderName(requested), "requested with --key")
    here = platform or Platform()
    reasons = []
    candidates: list[tuple[ProviderName, Callable[[], str | None]]] = [
        (ProviderName.TPM2, lambda: _probe_tpm2(tcti))
    ]
    if here.system == "win32":
        candidates.append((ProviderName.WINDOWS_PCP, _probe_windows_pcp))
    if here.system == "darwin":
        candidates.append((ProviderName.SECURE_ENCLAVE, lambda: _probe_secure_enclave(here)))
    for provider, probe in candidates:
        why_not = probe()
        if why_not is None:
            return KeyChoice(provider, f"{provider.value} is usable on this machine")
        reasons.append(f"{provider.value}: {why_not}")
    why = "; ".join(reasons)
    if not allow_fallback:
        raise KeyProviderError(
            f"no hardware-backed key is usable here ({why}); fix that, or pass "
            "--allow-software-fallback (or --key software) to use a software key, which the "
            "verifier will record as 'software'"
        )
    announce(f"using a software key, as allowed (hardware keys checked: {why})")
    return KeyChoice(ProviderName.SOFTWARE, "software fallback allowed by the user")


def create_key(
    home: AgentHome,
    provider: ProviderName,
    *,
    tcti: str | None,
    platform: Platform | None = None,
) -> KeyProvider:
    """Create a new device key with ``provider``."""
    here = platform or Platform()
    if provider is ProviderName.SOFTWARE:
        return SoftwareKey.create(home.key_path)
    if provider is ProviderName.TPM2:
        from attest.keys.tpm2 import Tpm2Key

        return Tpm2Key.create(home.tpm_dir, tcti=tcti)
    if provider is ProviderName.WINDOWS_PCP:
        from attest.keys.windows_pcp import WindowsPcpKey

        # one persisted CNG key per agent home, so a second home never replaces this one's key
        return WindowsPcpKey.create(_pcp_key_name(home), overwrite=True)
    from attest.keys.secure_enclave import SecureEnclaveKey, SubprocessHelper

    transport = SubprocessHelper.find(_se_helper(here))
    return SecureEnclaveKey.create(home.root / SE_KEY_FILE, transport=transport)


def load_key(
    home: AgentHome, enrollment: Enrollment, *, platform: Platform | None = None
) -> KeyProvider:
    """Load the enrolled device key."""
    here = platform or Platform()
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
    if provider is ProviderName.WINDOWS_PCP:
        from attest.keys.windows_pcp import WindowsPcpKey

        return WindowsPcpKey.load(_pcp_key_name(home))
    from attest.keys.secure_enclave import SecureEnclaveKey, SubprocessHelper

    transport = SubprocessHelper.find(_se_helper(here))
    return SecureEnclaveKey.load(home.root / SE_KEY_FILE, transport=transport)
