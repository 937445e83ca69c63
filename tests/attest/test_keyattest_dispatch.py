"""The key-attestation dispatcher, the ``none`` format, and trust-store loading."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attest.errors import FormatError, KeyAttestationError
from attest.jwk import public_jwk
from attest.keyattest import (
    AttestationFormat,
    VerifiedNoneKey,
    attestation_format,
    load_trust_store,
    verify_key_attestation,
    verify_none,
)
from attest.keys import KeyClass
from attest.keys.software import SoftwareKey
from attest.tpm import TpmStructureError, TrustStoreError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "tpm"
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def jwk() -> dict[str, str]:
    return public_jwk(ec.generate_private_key(ec.SECP256R1()).public_key())


def test_format_enum() -> None:
    assert attestation_format({"format": "none"}) is AttestationFormat.NONE
    assert attestation_format({"format": "tpm2"}) is AttestationFormat.TPM2


@pytest.mark.parametrize("statement", [{}, {"format": "TPM2"}, {"format": "packed"}, {"format": 1}])
def test_unknown_format_is_an_error(statement: dict[str, Any]) -> None:
    with pytest.raises(
        KeyAttestationError, match=r"is not supported; expected one of: none, tpm2$"
    ):
        verify_key_attestation(
            statement, expected_jwk=jwk(), expected_nonce=b"n", trust_store=None, now=NOW
        )


def test_software_key_enrolls_as_software(tmp_path: Path) -> None:
    key = SoftwareKey.create(tmp_path / "k.pem")
    result = verify_key_attestation(
        key.attestation(b"n"),
        expected_jwk=key.public_jwk(),
        expected_nonce=b"n",
        trust_store=None,
        now=NOW,
    )
    assert result == VerifiedNoneKey(public_jwk=key.public_jwk(), key_class=KeyClass.SOFTWARE)


def test_none_may_be_self_reported_hardware(tmp_path: Path) -> None:
    key = SoftwareKey.create(tmp_path / "k.pem")
    result = verify_none(
        key.attestation(b"n"),
        expected_jwk=key.public_jwk(),
        expected_nonce=b"n",
        claimed_class=KeyClass.HARDWARE_UNVERIFIED,
    )
    assert result.key_class is KeyClass.HARDWARE_UNVERIFIED


def test_the_dispatcher_passes_the_claimed_class_on(tmp_path: Path) -> None:
    key = SoftwareKey.create(tmp_path / "k.pem")
    result = verify_key_attestation(
        key.attestation(b"n"), expected_jwk=key.public_jwk(), expected_nonce=b"n",
        trust_store=None, now=NOW, claimed_class=KeyClass.HARDWARE_UNVERIFIED,
    )  # fmt: skip
    assert result.key_class is KeyClass.HARDWARE_UNVERIFIED


def test_none_can_never_claim_tpm2(tmp_path: Path) -> None:
    key = SoftwareKey.create(tmp_path / "k.pem")
    with pytest.raises(KeyAttestationError, match="needs a proof"):
        verify_none(
            key.attestation(b"n"),
            expected_jwk=key.public_jwk(),
            expected_nonce=b"n",
            claimed_class=KeyClass.TPM2,
        )


def test_none_with_extra_members_is_refused(tmp_path: Path) -> None:
    key = SoftwareKey.create(tmp_path / "k.pem")
    with pytest.raises(KeyAttestationError, match="exactly"):
        verify_none(
            {**key.attestation(b"n"), "key_class": "tpm2"},
            expected_jwk=key.public_jwk(),
            expected_nonce=b"n",
        )


def test_bad_jwk_is_a_format_error(tmp_path: Path) -> None:
    key = SoftwareKey.create(tmp_path / "k.pem")
    with pytest.raises(FormatError):
        verify_none(key.attestation(b"n"), expected_jwk={"kty": "RSA"}, expected_nonce=b"n")


def test_tpm2_without_trust_store_fails_closed() -> None:
    statement = json.loads((VECTORS / "valid_ecc_p384_ek.json").read_text())["statement"]
    with pytest.raises(KeyAttestationError, match=r"no EK trust store.*--key software"):
        verify_key_attestation(
            statement, expected_jwk=jwk(), expected_nonce=b"n", trust_store=None, now=NOW
        )


def test_tpm2_claim_from_software_key_fails(tmp_path: Path) -> None:
    # A software provider's statement relabelled as tpm2 carries no TPM structures at all.
    key = SoftwareKey.create(tmp_path / "k.pem")
    statement = {**key.attestation(b"n"), "format": "tpm2"}
    store = load_trust_store(_trust_dir(tmp_path))
    with pytest.raises(TpmStructureError, match="unknown members: proof"):
        verify_key_attestation(
            statement, expected_jwk=key.public_jwk(), expected_nonce=b"n", trust_store=store,
            now=NOW,
        )  # fmt: skip


def test_tpm2_statement_with_unknown_member(tmp_path: Path) -> None:
    case = json.loads((VECTORS / "valid_ecc_p384_ek.json").read_text())
    statement = {**case["statement"], "key_class": "tpm2"}
    with pytest.raises(TpmStructureError, match="unknown members: key_class"):
        verify_key_attestation(
            statement, expected_jwk=case["expected_jwk"], expected_nonce=b"n",
            trust_store=load_trust_store(_trust_dir(tmp_path)), now=NOW,
        )  # fmt: skip


def test_tpm2_statement_with_padded_base64(tmp_path: Path) -> None:
    case = json.loads((VECTORS / "valid_ecc_p384_ek.json").read_text())
    statement = {**case["statement"], "certify_signature": case["statement"]["ek_public"] + "="}
    with pytest.raises(TpmStructureError, match="not unpadded base64url"):
        verify_key_attestation(
            statement, expected_jwk=case["expected_jwk"], expected_nonce=b"n",
            trust_store=load_trust_store(_trust_dir(tmp_path)), now=NOW,
        )  # fmt: skip


def _trust_dir(tmp_path: Path) -> Path:
    case = json.loads((VECTORS / "valid_ecc_p384_ek.json").read_text())
    directory = tmp_path / "trust"
    directory.mkdir(exist_ok=True)
    for index, pem in enumerate(case["trust_store_pem"]):
        (directory / f"ca{index}.pem").write_text(pem)
    return directory


def test_trust_store_loads_pem_and_der(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    directory = _trust_dir(tmp_path)
    first = x509.load_pem_x509_certificate((directory / "ca0.pem").read_bytes())
    (directory / "ca0.pem").unlink()
    (directory / "root.der").write_bytes(first.public_bytes(serialization.Encoding.DER))
    (directory / "README").write_text("not a certificate, ignored by suffix")
    assert len(load_trust_store(directory).anchors) == 2


def test_trust_store_errors(tmp_path: Path) -> None:
    with pytest.raises(TrustStoreError, match="is not a directory"):
        load_trust_store(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrustStoreError, match="holds no certificates"):
        load_trust_store(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.pem").write_text(
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )
    with pytest.raises(TrustStoreError, match=r"is not a PEM or DER X\.509 certificate"):
        load_trust_store(tmp_path / "bad")


def test_naive_time_is_refused(tmp_path: Path) -> None:
    case = json.loads((VECTORS / "valid_ecc_p384_ek.json").read_text())
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_key_attestation(
            case["statement"], expected_jwk=case["expected_jwk"], expected_nonce=b"n",
            trust_store=load_trust_store(_trust_dir(tmp_path)), now=dt.datetime(2030, 1, 1),
        )  # fmt: skip
