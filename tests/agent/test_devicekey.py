"""``--key auto`` tries this platform's hardware providers, and says why it fell back."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agent.devicekey import Platform, choose_provider, create_key, load_key
from agent.home import AgentHome, Enrollment
from attest.errors import KeyProviderError
from attest.keys import ProviderName
from tests.servers import REPO

NO_TPM = "device:/nonexistent/tpmrm0"


def _helper(tmp_path: Path) -> Path:
    helper = tmp_path / "envattest-se-helper"
    helper.write_text(
        f"#!{sys.executable}\n" + (REPO / "tests/fixtures/fake_se_helper.py").read_text()
    )
    helper.chmod(0o755)
    return helper


def test_auto_on_macos_picks_the_secure_enclave_when_its_helper_runs(tmp_path: Path) -> None:
    platform = Platform("darwin", {"ENVATTEST_SE_HELPER": str(_helper(tmp_path))})
    choice = choose_provider(
        "auto", allow_fallback=False, tcti=NO_TPM, announce=print, platform=platform
    )
    assert choice.provider is ProviderName.SECURE_ENCLAVE


def test_auto_without_hardware_names_every_provider_it_tried(tmp_path: Path) -> None:
    platform = Platform("darwin", {"ENVATTEST_SE_HELPER": str(tmp_path / "absent")})
    with pytest.raises(KeyProviderError, match=r"tpm2: .*; secure-enclave: .*--allow-software"):
        choose_provider(
            "auto", allow_fallback=False, tcti=NO_TPM, announce=print, platform=platform
        )
    said: list[str] = []
    choice = choose_provider(
        "auto", allow_fallback=True, tcti=NO_TPM, announce=said.append, platform=platform
    )
    assert choice.provider is ProviderName.SOFTWARE
    assert said[0].startswith("using a software key, as allowed")


def test_auto_on_linux_does_not_try_platform_providers() -> None:
    with pytest.raises(KeyProviderError) as raised:
        choose_provider(
            "auto", allow_fallback=False, tcti=NO_TPM, announce=print, platform=Platform("linux")
        )
    assert "tpm2:" in str(raised.value)
    assert "windows-pcp" not in str(raised.value)
    assert "secure-enclave" not in str(raised.value)


def test_secure_enclave_key_is_created_and_loaded_through_the_helper(tmp_path: Path) -> None:
    home = AgentHome(tmp_path / "state")
    home.ensure()
    platform = Platform("darwin", {"ENVATTEST_SE_HELPER": str(_helper(tmp_path))})
    key = create_key(home, ProviderName.SECURE_ENCLAVE, tcti=None, platform=platform)
    enrollment = Enrollment("http://v", "dev", "secure-enclave", "hardware-unverified", 0)
    again = load_key(home, enrollment, platform=platform)
    assert again.public_jwk() == key.public_jwk()
    assert len(again.sign(b"data")) == 64


def test_windows_pcp_reaches_cng_and_says_it_needs_windows(tmp_path: Path) -> None:
    home = AgentHome(tmp_path / "state")
    with pytest.raises(KeyProviderError, match="only works on Windows"):
        create_key(home, ProviderName.WINDOWS_PCP, tcti=None)
