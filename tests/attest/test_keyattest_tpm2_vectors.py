"""Replay the static ``tpm2`` vectors (tests/vectors/tpm/, made by generate.py from swtpm).

These run without swtpm or tpm2-pytss: the verifier is pure Python.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

import attest.tpm.errors as tpm_errors
from attest.b64 import b64url_decode
from attest.errors import KeyAttestationError
from attest.keyattest import (
    activation_secret_sha256,
    make_activation_challenge,
    verify_activation_secret,
    verify_tpm2_key_attestation,
)
from attest.keys import KeyClass
from attest.tpm import TrustStore, trust_store_from_certificates

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "tpm"
CASES = sorted(p.stem for p in VECTORS.glob("*.json"))


def load_case(name: str) -> dict[str, Any]:
    case: dict[str, Any] = json.loads((VECTORS / f"{name}.json").read_text())
    return case


def case_trust_store(case: dict[str, Any]) -> TrustStore:
    certs = [x509.load_pem_x509_certificate(p.encode()) for p in case["trust_store_pem"]]
    return trust_store_from_certificates(certs)


def verify_case(case: dict[str, Any]) -> Any:
    return verify_tpm2_key_attestation(
        case["statement"],
        expected_jwk=case["expected_jwk"],
        expected_nonce=b64url_decode(case["expected_nonce"]),
        trust_store=case_trust_store(case),
        now=dt.datetime.fromisoformat(case["now"]),
    )


def test_vectors_exist_for_every_attack() -> None:
    refusals = [c for c in CASES if c.startswith("refuse_")]
    assert len(refusals) >= 14
    assert {"valid_ecc_p384_ek", "valid_rsa2048_ek", "valid_submitted_intermediate"} <= set(CASES)


@pytest.mark.parametrize("name", [c for c in CASES if load_case(c)["expect"].get("error")])
def test_refusal_vector(name: str) -> None:
    case = load_case(name)
    error = getattr(tpm_errors, case["expect"]["error"])
    assert issubclass(error, KeyAttestationError)
    with pytest.raises(error, match=case["expect"]["match"]):
        verify_case(case)


@pytest.mark.parametrize("name", [c for c in CASES if load_case(c)["expect"].get("result")])
def test_accepted_vector(name: str) -> None:
    case = load_case(name)
    verified = verify_case(case)
    assert verified.public_jwk == case["expected_jwk"]
    assert verified.key_class is KeyClass.TPM2
    assert verified.certify_info.extra_data == b64url_decode(case["expected_nonce"])
    assert verified.key_name == verified.certify_info.name
    # the verified path above the EK certificate, issuer first, ending at a trust anchor
    assert verified.ek_chain[0].subject == verified.ek_certificate.issuer
    assert verified.ek_chain[-1] in case_trust_store(case).anchors


@pytest.mark.parametrize("name", ["valid_ecc_p384_ek", "valid_rsa2048_ek"])
def test_activation_challenge_shape(name: str) -> None:
    verified = verify_case(load_case(name))
    secret = bytes(range(32))
    challenge = make_activation_challenge(verified, secret=secret)
    assert challenge.secret == secret
    # TPM2B_ID_OBJECT = size || TPM2B_DIGEST(hmac) || encIdentity(2 + 32 bytes)
    digest_size = 48 if name == "valid_ecc_p384_ek" else 32
    assert len(challenge.credential_blob) == 2 + 2 + digest_size + 2 + len(secret)
    assert (
        int.from_bytes(challenge.encrypted_secret[:2], "big") == len(challenge.encrypted_secret) - 2
    )
    assert make_activation_challenge(verified).secret != make_activation_challenge(verified).secret


def test_software_key_with_copied_ek_is_only_stopped_by_activation() -> None:
    # Steps 1-8 cannot distinguish a forged certify signed by a software "AK" once a real EK
    # certificate (public data) is copied in: the key class must wait for activation, which
    # needs the EK's private key. The server compares the answer in constant time.
    case = load_case("software_key_copied_ek_passes_until_activation")
    verified = verify_case(case)
    challenge = make_activation_challenge(verified)
    forged_answer = bytes(32)
    with pytest.raises(tpm_errors.ActivationError, match="activation secret does not match"):
        verify_activation_secret(
            forged_answer, expected_sha256=activation_secret_sha256(challenge.secret)
        )
