"""Every static vector case, rebuilt from fresh swtpm instances and checked the same way."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509

import attest.tpm.errors as tpm_errors
from attest.b64 import b64url_decode
from attest.keyattest import make_activation_challenge, verify_tpm2_key_attestation
from attest.tpm import trust_store_from_certificates
from tests.tpm.cases import Case, Lab, build_cases
from tests.tpm.swtpm import SoftwareTpm


@pytest.fixture(scope="module")
def live_cases(
    swtpm: SoftwareTpm,
    sibling_swtpm: SoftwareTpm,
    foreign_swtpm: SoftwareTpm,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Case]:
    return build_cases(Lab(swtpm, sibling_swtpm, foreign_swtpm, tmp_path_factory.mktemp("lab")))


def _verify(case: Case) -> object:
    trust = [x509.load_pem_x509_certificate(p.encode()) for p in case["trust_store_pem"]]
    return verify_tpm2_key_attestation(
        case["statement"],
        expected_jwk=case["expected_jwk"],
        expected_nonce=b64url_decode(case["expected_nonce"]),
        trust_store=trust_store_from_certificates(trust),
        now=dt.datetime.fromisoformat(case["now"]),
    )


def test_live_cases_match_their_expectations(live_cases: dict[str, Case]) -> None:
    static = {p.stem for p in (Path(__file__).parents[1] / "vectors" / "tpm").glob("*.json")}
    assert set(live_cases) == static, "regenerate tests/vectors/tpm with generate.py"
    for name, case in live_cases.items():
        expect = case["expect"]
        if "error" in expect:
            with pytest.raises(getattr(tpm_errors, expect["error"]), match=expect["match"]):
                _verify(case)
        else:
            assert _verify(case) is not None, name


def test_forged_statement_cannot_be_activated_by_the_real_tpm(
    live_cases: dict[str, Case], swtpm: SoftwareTpm, tmp_path: Path
) -> None:
    # The copied-EK forgery passes steps 1-8; the real TPM behind that EK does not hold the
    # forger's AK, so even its owner's provider cannot open the challenge.
    from attest.errors import KeyProviderError
    from attest.keyattest import VerifiedTpm2Key
    from attest.keys.tpm2 import Tpm2Key

    verified = _verify(live_cases["software_key_copied_ek_passes_until_activation"])
    assert isinstance(verified, VerifiedTpm2Key)
    challenge = make_activation_challenge(verified)
    honest = Tpm2Key.create(tmp_path / "k.json", tcti=swtpm.tcti, ek_kind="ecc-p384")
    with pytest.raises(KeyProviderError, match="refused the activation challenge"):
        honest.activate_credential(challenge.credential_blob, challenge.encrypted_secret)
