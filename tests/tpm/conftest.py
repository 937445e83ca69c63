"""Fixtures: software TPMs with EK certificates from a local CA (see tests/tpm/swtpm.py).

``swtpm`` and ``swtpm_tcti`` are one manufactured TPM for the session; ``sibling_swtpm`` shares
its EK CA (a second trusted machine); ``foreign_swtpm`` has its own CA (an untrusted vendor).
Every TPM started here is shut down cleanly at the end of the session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from attest.tpm import TrustStore, load_trust_store
from tests.tpm.swtpm import LocalCa, SoftwareTpm, manufacture_tpm, require_pytss, require_swtpm

TpmFactory = Callable[..., SoftwareTpm]


@pytest.fixture(scope="session")
def tpm_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TpmFactory]:
    """``make(name, ca=None)``: manufacture and start a TPM; all are stopped at session end."""
    require_swtpm()
    require_pytss()
    started: list[SoftwareTpm] = []

    def make(name: str, *, ca: LocalCa | None = None) -> SoftwareTpm:
        tpm = manufacture_tpm(tmp_path_factory.mktemp(f"swtpm-{name}"), ca=ca)
        tpm.start()
        started.append(tpm)
        return tpm

    yield make
    for tpm in started:
        tpm.stop()


@pytest.fixture(scope="session")
def swtpm(tpm_factory: TpmFactory) -> SoftwareTpm:
    """The main software TPM."""
    return tpm_factory("main")


@pytest.fixture
def swtpm_tcti(swtpm: SoftwareTpm) -> str:
    """TCTI of the main TPM, e.g. ``swtpm:host=127.0.0.1,port=P``."""
    return swtpm.tcti


@pytest.fixture(scope="session")
def sibling_swtpm(tpm_factory: TpmFactory, swtpm: SoftwareTpm) -> SoftwareTpm:
    """Another TPM whose EK certificate comes from the same (trusted) CA."""
    return tpm_factory("sibling", ca=swtpm.ca)


@pytest.fixture(scope="session")
def foreign_swtpm(tpm_factory: TpmFactory) -> SoftwareTpm:
    """A TPM whose EK certificate comes from a different local CA (untrusted)."""
    return tpm_factory("foreign")


@pytest.fixture(scope="session")
def ek_trust_dir(swtpm: SoftwareTpm, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trust-store directory with the main CA's root and issuing certificates."""
    directory = tmp_path_factory.mktemp("ek-trust")
    (directory / "root.pem").write_text(swtpm.ca.root_pem.read_text())
    (directory / "issuer.pem").write_text(swtpm.ca.issuer_pem.read_text())
    return directory


@pytest.fixture(scope="session")
def trust_store(ek_trust_dir: Path) -> TrustStore:
    """The trust store loaded from ``ek_trust_dir``."""
    return load_trust_store(ek_trust_dir)
