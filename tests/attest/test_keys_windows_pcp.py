"""windows-pcp provider logic above the CNG boundary, with an in-memory fake backend."""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from attest.errors import KeyProviderError
from attest.jose import der_to_raw
from attest.jwk import load_public_jwk
from attest.keyattest.none import verify_none
from attest.keys import KeyClass, ProviderName
from attest.keys import windows_pcp as pcp
from attest.keys.windows_pcp import PcpError, WindowsPcpKey, parse_ecc_public_blob


def eccpublic_blob(key: ec.EllipticCurvePublicKey, magic: int = 0x31534345) -> bytes:
    numbers = key.public_numbers()
    return (
        struct.pack("<II", magic, 32)
        + numbers.x.to_bytes(32, "big")
        + numbers.y.to_bytes(32, "big")
    )


@dataclass
class FakePcp:
    """Keys by name in memory; ``fail`` maps a method name to a SECURITY_STATUS to raise."""

    keys: dict[str, ec.EllipticCurvePrivateKey] = field(default_factory=dict)
    fail: dict[str, int] = field(default_factory=dict)
    open_handles: int = 0
    signs: int = 0

    def _maybe_fail(self, call: str) -> None:
        if call in self.fail:
            raise PcpError(call, self.fail[call])

    def open_key(self, name: str) -> Any:
        self._maybe_fail("open_key")
        if name not in self.keys:
            raise PcpError("NCryptOpenKey", pcp.NTE_BAD_KEYSET)
        self.open_handles += 1
        return name

    def create_key(self, name: str, *, overwrite: bool) -> Any:
        self._maybe_fail("create_key")
        if name in self.keys and not overwrite:
            raise PcpError("NCryptCreatePersistedKey", pcp.NTE_EXISTS)
        self.keys[name] = ec.generate_private_key(ec.SECP256R1())
        self.open_handles += 1
        return name

    def export_public_blob(self, key: Any) -> bytes:
        self._maybe_fail("export_public_blob")
        return eccpublic_blob(self.keys[key].public_key())

    def sign_hash(self, key: Any, digest: bytes) -> bytes:
        self._maybe_fail("sign_hash")
        self.signs += 1
        der = self.keys[key].sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        return der_to_raw(der)  # NCryptSignHash returns IEEE P1363 r||s

    def close(self, key: Any) -> None:
        self.open_handles -= 1


def test_create_sign_and_reload() -> None:
    backend = FakePcp()
    key = WindowsPcpKey.create(backend=backend)
    assert (key.name, key.claimed_class) == (ProviderName.WINDOWS_PCP, KeyClass.HARDWARE_UNVERIFIED)
    signature = key.sign(b"evidence")
    assert backend.signs == 1
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    load_public_jwk(key.public_jwk()).verify(
        encode_dss_signature(r, s), b"evidence", ec.ECDSA(hashes.SHA256())
    )
    assert WindowsPcpKey.load(backend=backend).public_jwk() == key.public_jwk()
    # no hardware proof, but the key signs the enrollment challenge (proof of possession)
    verified = verify_none(
        key.attestation(b"nonce"), expected_jwk=key.public_jwk(), expected_nonce=b"nonce"
    )
    assert verified.public_jwk == key.public_jwk()
    assert backend.open_handles == 0


def test_blob_parsing() -> None:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert parse_ecc_public_blob(eccpublic_blob(public)).public_numbers() == public.public_numbers()
    with pytest.raises(KeyProviderError, match="expected an ECDSA P-256 public key"):
        parse_ecc_public_blob(eccpublic_blob(public, magic=0x31534B45))  # ECDH_P256 magic
    with pytest.raises(KeyProviderError, match="truncated"):
        parse_ecc_public_blob(b"ECS1")
    off_curve = struct.pack("<II", 0x31534345, 32) + (1).to_bytes(32, "big") * 2
    with pytest.raises(KeyProviderError, match="not on P-256"):
        parse_ecc_public_blob(off_curve)


@pytest.mark.parametrize(
    ("method", "status", "message"),
    [
        ("create_key", pcp.NTE_DEVICE_NOT_READY, "no usable TPM 2.0"),
        ("create_key", pcp.TBS_E_TPM_NOT_FOUND, "enable the TPM in firmware"),
        ("create_key", pcp.TPM_20_E_LOCKOUT, "dictionary-attack lockout"),
        ("create_key", 0x80004005, "Platform Crypto Provider failed"),
    ],
)
def test_error_mapping(method: str, status: int, message: str) -> None:
    with pytest.raises(KeyProviderError, match=message):
        WindowsPcpKey.create(backend=FakePcp(fail={method: status}))


def test_missing_and_existing_keys() -> None:
    backend = FakePcp()
    with pytest.raises(KeyProviderError, match="run 'envattest init'"):
        WindowsPcpKey.load(backend=backend)
    WindowsPcpKey.create(backend=backend)
    with pytest.raises(KeyProviderError, match="already exists"):
        WindowsPcpKey.create(backend=backend)
    WindowsPcpKey.create(backend=backend, overwrite=True)


def test_sign_failure_closes_the_handle() -> None:
    backend = FakePcp()
    key = WindowsPcpKey.create(backend=backend)
    backend.fail["sign_hash"] = pcp.TPM_E_PCP_AUTHENTICATION_FAILED
    with pytest.raises(KeyProviderError, match="refused the key's authorization"):
        key.sign(b"x")
    assert backend.open_handles == 0


def test_wrong_signature_length_is_refused() -> None:
    backend = FakePcp()
    key = WindowsPcpKey.create(backend=backend)
    backend.sign_hash = lambda key, digest: b"\0" * 70  # type: ignore[method-assign]
    with pytest.raises(KeyProviderError, match="expected 64"):
        key.sign(b"x")


@pytest.mark.skipif(sys.platform == "win32", reason="checks the non-Windows refusal")
def test_real_backend_refuses_other_platforms() -> None:
    with pytest.raises(KeyProviderError, match="only works on Windows"):
        pcp.CngPcpBackend()
