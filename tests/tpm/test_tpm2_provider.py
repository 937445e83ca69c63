"""The tpm2 provider against swtpm, end to end with the pure-Python verifier."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attest.errors import KeyProviderError
from attest.jwk import load_public_jwk
from attest.keyattest import (
    VerifiedTpm2Key,
    activation_secret_sha256,
    make_activation_challenge,
    verify_activation_secret,
    verify_key_attestation,
    verify_tpm2_key_attestation,
)
from attest.keys import KeyClass, ProviderName
from attest.keys.tpm2 import EkKind, Tpm2Key, probe_tpm2
from attest.tpm import ActivationError, TrustStore
from tests.tpm.conftest import TpmFactory
from tests.tpm.swtpm import SoftwareTpm


def verify_es256(jwk: dict[str, str], data: bytes, raw: bytes) -> None:
    signature = encode_dss_signature(
        int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    )
    load_public_jwk(jwk).verify(signature, data, ec.ECDSA(hashes.SHA256()))


def enroll(key: Tpm2Key, trust_store: TrustStore) -> VerifiedTpm2Key:
    nonce = os.urandom(32)
    return verify_tpm2_key_attestation(
        key.attestation(nonce),
        expected_jwk=key.public_jwk(),
        expected_nonce=nonce,
        trust_store=trust_store,
        now=dt.datetime.now(dt.UTC),
    )


@pytest.mark.parametrize("ek_kind", ["ecc-p384", "rsa2048"])
def test_enroll_and_activate(
    ek_kind: EkKind, swtpm: SoftwareTpm, trust_store: TrustStore, tmp_path: Path
) -> None:
    key = Tpm2Key.create(tmp_path / "key.json", tcti=swtpm.tcti, ek_kind=ek_kind)
    assert (key.name, key.claimed_class, key.ek_kind) == (ProviderName.TPM2, KeyClass.TPM2, ek_kind)
    assert (tmp_path / "key.json").stat().st_mode & 0o777 == 0o600

    verified = enroll(key, trust_store)
    challenge = make_activation_challenge(verified)
    answer = key.activate_credential(challenge.credential_blob, challenge.encrypted_secret)

    assert answer == challenge.secret
    verify_activation_secret(answer, expected_sha256=activation_secret_sha256(challenge.secret))
    assert verified.public_jwk == key.public_jwk()


def test_dispatcher_accepts_tpm2(
    swtpm: SoftwareTpm, trust_store: TrustStore, tmp_path: Path
) -> None:
    key = Tpm2Key.create(tmp_path / "key.json", tcti=swtpm.tcti)
    nonce = os.urandom(32)
    result = verify_key_attestation(
        key.attestation(nonce),
        expected_jwk=key.public_jwk(),
        expected_nonce=nonce,
        trust_store=trust_store,
        now=dt.datetime.now(dt.UTC),
    )
    assert isinstance(result, VerifiedTpm2Key)


def test_sign_verifies_with_the_jwk(swtpm: SoftwareTpm, tmp_path: Path) -> None:
    key = Tpm2Key.create(tmp_path / "key.json", tcti=swtpm.tcti)
    signature = key.sign(b"evidence")
    assert len(signature) == 64
    verify_es256(key.public_jwk(), b"evidence", signature)
    with pytest.raises(InvalidSignature):
        verify_es256(key.public_jwk(), b"other", signature)


def test_key_reloads_after_tpm_restart(
    tpm_factory: TpmFactory, swtpm: SoftwareTpm, trust_store: TrustStore, tmp_path: Path
) -> None:
    tpm = tpm_factory("restart", ca=swtpm.ca)
    created = Tpm2Key.create(tmp_path / "key.json", tcti=tpm.tcti, ek_kind="rsa2048")
    tpm.restart()
    loaded = Tpm2Key.load(tmp_path / "key.json", tcti=tpm.tcti)

    assert loaded.public_jwk() == created.public_jwk()
    verify_es256(loaded.public_jwk(), b"after restart", loaded.sign(b"after restart"))
    verified = enroll(loaded, trust_store)
    challenge = make_activation_challenge(verified)
    assert loaded.activate_credential(challenge.credential_blob, challenge.encrypted_secret) == (
        challenge.secret
    )


def test_works_with_ek_created_from_template(
    tpm_factory: TpmFactory, swtpm: SoftwareTpm, trust_store: TrustStore, tmp_path: Path
) -> None:
    # swtpm_setup persists its EKs; real TPMs often don't: evict them and re-create from templates.
    tpm = tpm_factory("no-persistent-ek", ca=swtpm.ca)
    _evict_persistent_eks(tpm.tcti)
    kinds: tuple[EkKind, ...] = ("ecc-p384", "rsa2048")
    for kind in kinds:
        key = Tpm2Key.create(tmp_path / f"{kind}.json", tcti=tpm.tcti, ek_kind=kind)
        challenge = make_activation_challenge(enroll(key, trust_store))
        got = key.activate_credential(challenge.credential_blob, challenge.encrypted_secret)
        assert got == challenge.secret


def _evict_persistent_eks(tcti: str) -> None:
    from attest.keys import tpm2 as provider

    with provider._connect(tcti, "evicting") as tpm:
        for handle in (0x81010001, 0x81010016):
            persistent = tpm.esapi.tr_from_tpmpublic(handle)
            tpm.esapi.evict_control(tpm.t.ESYS_TR.OWNER, persistent, handle)


def test_activation_on_another_tpm_fails(
    swtpm: SoftwareTpm, sibling_swtpm: SoftwareTpm, trust_store: TrustStore, tmp_path: Path
) -> None:
    key = Tpm2Key.create(tmp_path / "key.json", tcti=swtpm.tcti)
    challenge = make_activation_challenge(enroll(key, trust_store))
    # The same key file used against another TPM (a copied disk image) cannot even load...
    moved = Tpm2Key.load(tmp_path / "key.json", tcti=sibling_swtpm.tcti)
    with pytest.raises(KeyProviderError, match="cannot load the key"):
        moved.activate_credential(challenge.credential_blob, challenge.encrypted_secret)
    # ...and the other TPM's own AK cannot open a challenge made for this EK and AK.
    other = Tpm2Key.create(tmp_path / "other.json", tcti=sibling_swtpm.tcti)
    with pytest.raises(KeyProviderError, match="refused the activation challenge"):
        other.activate_credential(challenge.credential_blob, challenge.encrypted_secret)


def test_activation_by_another_ak_in_the_same_tpm_fails(
    swtpm: SoftwareTpm, trust_store: TrustStore, tmp_path: Path
) -> None:
    key = Tpm2Key.create(tmp_path / "key.json", tcti=swtpm.tcti, ek_kind="ecc-p384")
    other = Tpm2Key.create(tmp_path / "other.json", tcti=swtpm.tcti, ek_kind="ecc-p384")
    challenge = make_activation_challenge(enroll(key, trust_store))
    with pytest.raises(KeyProviderError, match="refused the activation challenge"):
        other.activate_credential(challenge.credential_blob, challenge.encrypted_secret)


def test_wrong_secret_is_refused(
    swtpm: SoftwareTpm, trust_store: TrustStore, tmp_path: Path
) -> None:
    key = Tpm2Key.create(tmp_path / "key.json", tcti=swtpm.tcti)
    challenge = make_activation_challenge(enroll(key, trust_store))
    answer = key.activate_credential(challenge.credential_blob, challenge.encrypted_secret)
    with pytest.raises(ActivationError, match="does not match"):
        verify_activation_secret(
            answer[:-1] + bytes([answer[-1] ^ 1]),
            expected_sha256=activation_secret_sha256(challenge.secret),
        )


def test_probe(swtpm: SoftwareTpm) -> None:
    result = probe_tpm2(swtpm.tcti)
    assert result.available, result.reason
    assert "EK certificate" in result.reason


def test_probe_and_errors_without_a_tpm(tmp_path: Path) -> None:
    missing = probe_tpm2(f"device:{tmp_path / 'tpmrm0'}")
    assert not missing.available
    assert "no TPM device" in missing.reason
    closed = probe_tpm2("swtpm:host=127.0.0.1,port=9")
    assert not closed.available
    assert "cannot talk to the TPM" in closed.reason
    with pytest.raises(KeyProviderError, match="no TPM device"):
        Tpm2Key.create(tmp_path / "key.json", tcti=f"device:{tmp_path / 'tpmrm0'}")


def test_permission_denied_names_the_tss_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = tmp_path / "tpmrm0"
    device.write_bytes(b"")
    # root ignores file modes, so simulate a user outside the tss group
    monkeypatch.setattr("attest.keys.tpm2.os.access", lambda path, mode: False)
    assert not probe_tpm2(f"device:{device}").available
    with pytest.raises(KeyProviderError, match="add your user to the 'tss' group"):
        Tpm2Key.create(tmp_path / "key.json", tcti=f"device:{device}")


def test_missing_ek_certificate(swtpm: SoftwareTpm, tmp_path: Path) -> None:
    # swtpm 0.7 provisions no P-256 EK certificate at 0x01c0000a.
    with pytest.raises(KeyProviderError, match=r"no EK certificate in NV \(0x01c0000a\)"):
        Tpm2Key.create(tmp_path / "key.json", tcti=swtpm.tcti, ek_kind="ecc-p256")


def test_directory_path_and_default_tcti(swtpm: SoftwareTpm, tmp_path: Path) -> None:
    key = Tpm2Key.create(tmp_path / "tpm", tcti=swtpm.tcti)
    assert (tmp_path / "tpm" / "tpm2-key.json").is_file()
    assert Tpm2Key.load(tmp_path / "tpm", tcti=swtpm.tcti).public_jwk() == key.public_jwk()
    assert probe_tpm2(None).reason != ""  # None means device:/dev/tpmrm0 and never raises


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(KeyProviderError, match="run 'envattest init'"):
        Tpm2Key.load(tmp_path / "absent.json", tcti="device:/dev/null")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(KeyProviderError, match="is unreadable"):
        Tpm2Key.load(tmp_path / "bad.json", tcti="device:/dev/null")


def test_tpm_refuses_to_certify_a_public_only_key(swtpm: SoftwareTpm, tmp_path: Path) -> None:
    # Why the name check suffices: a public area with fixedTPM loaded via LoadExternal
    # (public part only) cannot be certified, so a certified name implies a real TPM object.
    from attest.keys import tpm2 as provider
    from tests.tpm.cases import key_blobs

    Tpm2Key.create(tmp_path / "key.json", tcti=swtpm.tcti)
    ak_private, ak_public = key_blobs(tmp_path / "key.json", "ak")
    with provider._connect(swtpm.tcti, "lab") as tpm:
        t = tpm.t
        srk = provider._load_srk(tpm, None)
        ak = tpm.track(
            tpm.esapi.load(
                srk,
                t.TPM2B_PRIVATE.unmarshal(ak_private)[0],
                t.TPM2B_PUBLIC.unmarshal(ak_public)[0],
            )
        )
        template = provider._ecc_p256_template(tpm, provider._KEY_ATTRS, storage=False)
        point = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
        template.publicArea.unique.ecc.x = point.x.to_bytes(32, "big")
        template.publicArea.unique.ecc.y = point.y.to_bytes(32, "big")
        external = tpm.track(tpm.esapi.load_external(template, None, t.ESYS_TR.OWNER))
        scheme = t.TPMT_SIG_SCHEME(scheme=t.TPM2_ALG.NULL)
        with pytest.raises(t.TSS2_Exception, match="authValue or authPolicy is not available"):
            tpm.esapi.certify(external, ak, os.urandom(32), scheme)
    assert ak is not None


@pytest.mark.parametrize("template", ["EK-ECC256", "EK-RSA2048", "EK-HIGH-ECC384"])
def test_make_credential_matches_tpm_activate_credential(
    template: str, swtpm: SoftwareTpm, tmp_path: Path
) -> None:
    # The pure-Python MakeCredential against the TPM's ActivateCredential for each EK template,
    # including the P-256 EK (AES-128, SHA-256) for which swtpm provisions no certificate.
    from tpm2_pytss.utils import NVReadEK, create_ek_template

    from attest.keys import tpm2 as provider
    from attest.tpm import make_credential, parse_tpmt_public
    from tests.tpm.cases import key_blobs

    Tpm2Key.create(tmp_path / "key.json", tcti=swtpm.tcti, ek_kind="rsa2048")
    ak_private, ak_public = key_blobs(tmp_path / "key.json", "ak")
    secret = os.urandom(32)
    with provider._connect(swtpm.tcti, "lab") as tpm:
        t = tpm.t
        srk = provider._load_srk(tpm, None)
        ak = tpm.track(
            tpm.esapi.load(
                srk,
                t.TPM2B_PRIVATE.unmarshal(ak_private)[0],
                t.TPM2B_PUBLIC.unmarshal(ak_public)[0],
            )
        )
        tpm.flush(srk)
        _, ek_template = create_ek_template(template, NVReadEK(tpm.esapi))
        ek, ek_public, *_ = tpm.esapi.create_primary(None, ek_template, t.ESYS_TR.ENDORSEMENT)
        tpm.track(ek)
        parsed = parse_tpmt_public(ek_public.publicArea.marshal())
        credential = make_credential(parsed, bytes(tpm.esapi.tr_get_name(ak)), secret)
        session = provider._ek_session(tpm, ek_public)
        answer = tpm.esapi.activate_credential(
            ak,
            ek,
            t.TPM2B_ID_OBJECT.unmarshal(credential.credential_blob)[0],
            t.TPM2B_ENCRYPTED_SECRET.unmarshal(credential.encrypted_secret)[0],
            session1=t.ESYS_TR.PASSWORD,
            session2=session,
        )
    assert bytes(answer) == secret
