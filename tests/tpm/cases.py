"""Build the ``tpm2`` key-attestation cases (valid statements and every attack) from live TPMs.

Used by ``tests/vectors/tpm/generate.py`` to write the static vectors, and by the live tests to
check the same cases against a fresh swtpm. A case is a JSON-ready dict::

    {"description", "statement", "expected_jwk", "expected_nonce" (b64url), "now" (ISO 8601),
     "trust_store_pem": [PEM...], "expect": {"result": "ok"} | {"error": Name, "match": regex}}
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from attest.b64 import b64url_decode, b64url_encode
from attest.jwk import public_jwk
from attest.keyattest.tpm2_statement import build_tpm2_statement
from attest.keys import tpm2 as tpm2_provider
from attest.keys.tpm2 import EkKind, Tpm2Key
from attest.tpm.constants import TPM_GENERATED_VALUE, ObjectAttributes, TpmAlg, TpmSt
from attest.tpm.public import tpm_name
from attest.tpm.wire import tpm2b
from tests.tpm.forged_cases import parameter_cases
from tests.tpm.swtpm import LocalCa, SoftwareTpm

Case = dict[str, Any]
_A = ObjectAttributes
DUPLICABLE_ATTRS = "sensitivedataorigin|userwithauth|noda|sign"
UNRESTRICTED_SIGNER_ATTRS = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|sign"
AK_ATTRS = UNRESTRICTED_SIGNER_ATTRS + "|restricted"


def trust_pems(*cas: LocalCa, root_only: bool = False) -> list[str]:
    """PEM texts of a CA's root (and issuer unless ``root_only``)."""
    pems = []
    for ca in cas:
        pems.append(ca.root_pem.read_text())
        if not root_only:
            pems.append(ca.issuer_pem.read_text())
    return pems


def tpmt_public(tpm2b_public: bytes) -> bytes:
    """The TPMT_PUBLIC inside a TPM2B_PUBLIC."""
    return tpm2b_public[2 : 2 + int.from_bytes(tpm2b_public[:2], "big")]


@dataclass
class TpmLab:
    """Raw TPM operations the provider never does (duplicable keys, cross-certification)."""

    tcti: str

    def create(self, attributes: str) -> tuple[bytes, bytes]:
        """A new ECC P-256 ECDSA key under the SRK: (TPM2B_PRIVATE, TPM2B_PUBLIC)."""
        with tpm2_provider._connect(self.tcti, "lab create") as tpm:
            srk = tpm2_provider._load_srk(tpm, None)
            template = tpm2_provider._ecc_p256_template(tpm, attributes, storage=False)
            private, public, *_ = tpm.esapi.create(srk, None, template)
            return private.marshal(), public.marshal()

    def certify(
        self, subject: tuple[bytes, bytes], signer: tuple[bytes, bytes], nonce: bytes
    ) -> tuple[bytes, bytes]:
        """TPM2_Certify(subject, signer, nonce): (TPMS_ATTEST, TPMT_SIGNATURE)."""
        with tpm2_provider._connect(self.tcti, "lab certify") as tpm:
            t = tpm.t
            srk = tpm2_provider._load_srk(tpm, None)
            handles = []
            for private, public in (subject, signer):
                priv, _ = t.TPM2B_PRIVATE.unmarshal(private)
                pub, _ = t.TPM2B_PUBLIC.unmarshal(public)
                handles.append(tpm.track(tpm.esapi.load(srk, priv, pub)))
            tpm.flush(srk)
            scheme = t.TPMT_SIG_SCHEME(scheme=t.TPM2_ALG.NULL)
            info, signature = tpm.esapi.certify(handles[0], handles[1], nonce, scheme)
            return bytes(info), signature.marshal()

    def ek(self, kind: EkKind) -> tuple[bytes, bytes]:
        """(EK certificate DER, EK TPMT_PUBLIC)."""
        with tpm2_provider._connect(self.tcti, "lab ek") as tpm:
            _, public, cert = tpm2_provider._load_ek(tpm, kind)
            return cert, public.publicArea.marshal()


def key_blobs(key_file: Path, which: str) -> tuple[bytes, bytes]:
    """(private, public) blobs of the provider's ``key`` or ``ak`` from its key file."""
    doc = json.loads(key_file.read_bytes())
    return b64url_decode(doc[f"{which}_private"]), b64url_decode(doc[f"{which}_public"])


def jwk_of_tpm2b_public(public: bytes) -> dict[str, str]:
    """The P-256 JWK of an ECC TPM2B_PUBLIC."""
    from attest.tpm.public import parse_tpm2b_public

    key = parse_tpm2b_public(public).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return public_jwk(key)


# --- hand-made structures: what an attacker with only a software key can produce -------------


def ecc_tpmt_public(
    key: ec.EllipticCurvePublicKey,
    attributes: ObjectAttributes,
    *,
    scheme: int = TpmAlg.ECDSA,
    symmetric_aes128_cfb: bool = False,
) -> bytes:
    """Marshal a P-256 TPMT_PUBLIC (nameAlg SHA-256) for ``key``."""
    numbers = key.public_numbers()
    symmetric = (
        TpmAlg.AES.to_bytes(2, "big") + (128).to_bytes(2, "big") + TpmAlg.CFB.to_bytes(2, "big")
        if symmetric_aes128_cfb
        else TpmAlg.NULL.to_bytes(2, "big")
    )
    scheme_bytes = scheme.to_bytes(2, "big")
    if scheme != TpmAlg.NULL:
        scheme_bytes += TpmAlg.SHA256.to_bytes(2, "big")
    return (
        TpmAlg.ECC.to_bytes(2, "big")
        + TpmAlg.SHA256.to_bytes(2, "big")
        + int(attributes).to_bytes(4, "big")
        + tpm2b(b"")
        + symmetric
        + scheme_bytes
        + (0x0003).to_bytes(2, "big")  # TPM_ECC_NIST_P256
        + TpmAlg.NULL.to_bytes(2, "big")  # kdf
        + tpm2b(numbers.x.to_bytes(32, "big"))
        + tpm2b(numbers.y.to_bytes(32, "big"))
    )


def forged_certify(
    *,
    ak: ec.EllipticCurvePrivateKey,
    ak_public: bytes,
    key_public: bytes,
    nonce: bytes,
) -> tuple[bytes, bytes]:
    """A TPMS_ATTEST for ``key_public`` signed in software by ``ak``, laid out as a TPM does."""
    name = tpm_name(TpmAlg.SHA256, key_public)
    info = (
        TPM_GENERATED_VALUE.to_bytes(4, "big")
        + TpmSt.ATTEST_CERTIFY.to_bytes(2, "big")
        + tpm2b(tpm_name(TpmAlg.SHA256, ak_public))
        + tpm2b(nonce)
        + (123456).to_bytes(8, "big")
        + (1).to_bytes(4, "big")
        + (0).to_bytes(4, "big")
        + b"\x01"
        + (0x2019102300000000).to_bytes(8, "big")
        + tpm2b(name)
        + tpm2b(name)
    )
    r, s = decode_dss_signature(ak.sign(info, ec.ECDSA(hashes.SHA256())))
    signature = (
        TpmAlg.ECDSA.to_bytes(2, "big")
        + TpmAlg.SHA256.to_bytes(2, "big")
        + tpm2b(r.to_bytes(32, "big"))
        + tpm2b(s.to_bytes(32, "big"))
    )
    return info, signature


def attacker_ca_ek(now: dt.datetime) -> tuple[bytes, bytes, str]:
    """An attacker's own CA and 'EK certificate' for a software key: (cert, ek_public, CA PEM)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swtpm-localca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ek_key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca_name)
        .public_key(ek_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(ca_key, hashes.SHA256())
    )
    ek_attrs = (
        _A.FIXED_TPM | _A.FIXED_PARENT | _A.SENSITIVE_DATA_ORIGIN | _A.ADMIN_WITH_POLICY
    ) | (_A.RESTRICTED | _A.DECRYPT)
    ek_public = ecc_tpmt_public(
        ek_key.public_key(), ek_attrs, scheme=TpmAlg.NULL, symmetric_aes128_cfb=True
    )
    return (
        cert.public_bytes(serialization.Encoding.DER),
        ek_public,
        ca.public_bytes(serialization.Encoding.PEM).decode(),
    )


# --- the cases ------------------------------------------------------------------------------


@dataclass
class Lab:
    """Three manufactured, started TPMs: ``main`` and ``sibling`` share a CA; ``foreign`` not."""

    main: SoftwareTpm
    sibling: SoftwareTpm
    foreign: SoftwareTpm
    workdir: Path


def _case(
    description: str,
    statement: dict[str, Any],
    *,
    jwk: dict[str, str],
    nonce: bytes,
    now: dt.datetime,
    trust: list[str],
    error: str | None = None,
    match: str | None = None,
) -> Case:
    expect: dict[str, str] = {"result": "ok"} if error is None else {"error": error}
    if match is not None:
        expect["match"] = match
    return {
        "description": description,
        "statement": statement,
        "expected_jwk": jwk,
        "expected_nonce": b64url_encode(nonce),
        "now": now.isoformat(),
        "trust_store_pem": trust,
        "expect": expect,
    }


def build_cases(lab: Lab, now: dt.datetime | None = None) -> dict[str, Case]:
    """Every case, named; valid ones first."""
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    trust = trust_pems(lab.main.ca)
    main_lab = TpmLab(lab.main.tcti)
    cases: dict[str, Case] = {}

    def fresh(kind: EkKind, name: str, tpm: SoftwareTpm | None = None) -> Tpm2Key:
        return Tpm2Key.create(
            lab.workdir / f"{name}.json", tcti=(tpm or lab.main).tcti, ek_kind=kind
        )

    nonce = os.urandom(32)
    p384 = fresh("ecc-p384", "p384")
    good = p384.attestation(nonce)
    cases["valid_ecc_p384_ek"] = _case(
        "P-384 EK (high range 0x01c00016), ECC AK, certified P-256 key: accepted",
        good, jwk=p384.public_jwk(), nonce=nonce, now=now, trust=trust,
    )  # fmt: skip

    rsa = fresh("rsa2048", "rsa")
    rsa_nonce = os.urandom(32)
    cases["valid_rsa2048_ek"] = _case(
        "RSA-2048 EK (0x01c00002), ECC AK, certified P-256 key: accepted",
        rsa.attestation(rsa_nonce), jwk=rsa.public_jwk(), nonce=rsa_nonce, now=now, trust=trust,
    )  # fmt: skip

    with_chain = dict(good)
    with_chain["ek_chain"] = [b64url_encode(_pem_to_der(lab.main.ca.issuer_pem.read_text()))]
    cases["valid_submitted_intermediate"] = _case(
        "trust store holds only the root; the device submits the issuing CA in ek_chain",
        with_chain, jwk=p384.public_jwk(), nonce=nonce, now=now,
        trust=trust_pems(lab.main.ca, root_only=True),
    )  # fmt: skip

    cases["refuse_missing_intermediate"] = _case(
        "trust store holds only the root and the device sends no intermediate",
        good, jwk=p384.public_jwk(), nonce=nonce, now=now,
        trust=trust_pems(lab.main.ca, root_only=True),
        error="EkCertificateError", match="does not chain to the EK trust store",
    )  # fmt: skip

    foreign = fresh("ecc-p384", "foreign", lab.foreign)
    foreign_nonce = os.urandom(32)
    cases["refuse_untrusted_ek_ca"] = _case(
        "EK certificate from another local CA (same CA names, different keys)",
        foreign.attestation(foreign_nonce), jwk=foreign.public_jwk(), nonce=foreign_nonce,
        now=now, trust=trust, error="EkCertificateError",
        match="does not chain to the EK trust store",
    )  # fmt: skip

    cases["refuse_ek_not_yet_valid"] = _case(
        "verification time before the EK certificate's notBefore",
        good, jwk=p384.public_jwk(), nonce=nonce, now=dt.datetime(2001, 1, 1, tzinfo=dt.UTC),
        trust=trust, error="EkCertificateError", match="is not valid at",
    )  # fmt: skip

    rsa_cert, _ = main_lab.ek("rsa2048")
    mismatched = dict(good)
    mismatched["ek_cert"] = b64url_encode(rsa_cert)
    cases["refuse_ek_cert_other_key"] = _case(
        "a trusted EK certificate (the RSA EK's) sent with a different EK public area (P-384)",
        mismatched, jwk=p384.public_jwk(), nonce=nonce, now=now, trust=trust,
        error="EkCertificateError", match="EK certificate's public key is not the submitted EK",
    )  # fmt: skip

    sibling_cert, _ = TpmLab(lab.sibling.tcti).ek("ecc-p384")
    other_tpm = dict(good)
    other_tpm["ek_cert"] = b64url_encode(sibling_cert)
    cases["refuse_ek_cert_other_tpm"] = _case(
        "a trusted EK certificate of another TPM sent with this TPM's EK public area",
        other_tpm, jwk=p384.public_jwk(), nonce=nonce, now=now, trust=trust,
        error="EkCertificateError", match="EK certificate's public key is not the submitted EK",
    )  # fmt: skip

    ak_blobs = key_blobs(lab.workdir / "p384.json", "ak")
    duplicable = main_lab.create(DUPLICABLE_ATTRS)
    dup_nonce = os.urandom(32)
    info, sig = main_lab.certify(duplicable, ak_blobs, dup_nonce)
    dup_statement = dict(good)
    dup_statement.update(
        key_public=b64url_encode(tpmt_public(duplicable[1])),
        certify_info=b64url_encode(info),
        certify_signature=b64url_encode(sig),
    )
    cases["refuse_key_without_fixed_tpm"] = _case(
        "a duplicable key (no fixedTPM/fixedParent) genuinely certified by the TPM's AK",
        dup_statement, jwk=jwk_of_tpm2b_public(duplicable[1]), nonce=dup_nonce, now=now,
        trust=trust, error="TpmAttributeError", match="signing key must have fixedTPM",
    )  # fmt: skip

    edited_public = bytearray(b64url_decode(good["key_public"]))
    edited_public[4:8] = (
        int.from_bytes(edited_public[4:8], "big") & ~int(_A.NO_DA) & 0xFFFFFFFF
    ).to_bytes(4, "big")
    edited = dict(good)
    edited["key_public"] = b64url_encode(bytes(edited_public))
    cases["refuse_key_public_edited"] = _case(
        "key_public with an edited attribute (noDA cleared): its name no longer matches",
        edited, jwk=p384.public_jwk(), nonce=nonce, now=now, trust=trust,
        error="CertifyInfoError", match="certified name is not the name of key_public",
    )  # fmt: skip

    other_key = fresh("ecc-p384", "other-key")
    swapped = dict(good)
    swapped["key_public"] = b64url_encode(
        tpmt_public(key_blobs(lab.workdir / "other-key.json", "key")[1])
    )
    cases["refuse_certify_names_other_key"] = _case(
        "certify_info of one TPM key sent with another TPM key's public area and JWK",
        swapped, jwk=other_key.public_jwk(), nonce=nonce, now=now, trust=trust,
        error="CertifyInfoError", match="certified name is not the name of key_public",
    )  # fmt: skip

    other_ak = key_blobs(lab.workdir / "other-key.json", "ak")
    key = key_blobs(lab.workdir / "p384.json", "key")
    ak2_nonce = os.urandom(32)
    info, sig = main_lab.certify(key, other_ak, ak2_nonce)
    by_other_ak = dict(good)
    by_other_ak.update(certify_info=b64url_encode(info), certify_signature=b64url_encode(sig))
    cases["refuse_certify_by_other_ak"] = _case(
        "the key certified by a second AK while ak_public names the first (activated) AK",
        by_other_ak, jwk=p384.public_jwk(), nonce=ak2_nonce, now=now, trust=trust,
        error="TpmSignatureError", match="does not verify with the attestation key",
    )  # fmt: skip

    unrestricted = main_lab.create(UNRESTRICTED_SIGNER_ATTRS)
    un_nonce = os.urandom(32)
    info, sig = main_lab.certify(key, unrestricted, un_nonce)
    by_unrestricted = dict(good)
    by_unrestricted.update(
        ak_public=b64url_encode(tpmt_public(unrestricted[1])),
        certify_info=b64url_encode(info),
        certify_signature=b64url_encode(sig),
    )
    cases["refuse_unrestricted_ak"] = _case(
        "certified by an unrestricted signing key, which could sign a forged TPMS_ATTEST",
        by_unrestricted, jwk=p384.public_jwk(), nonce=un_nonce, now=now, trust=trust,
        error="TpmAttributeError", match="AK must be a restricted signing key",
    )  # fmt: skip

    cases["refuse_stale_nonce"] = _case(
        "a genuine certification replayed for a later enrollment (different nonce)",
        good, jwk=p384.public_jwk(), nonce=os.urandom(32), now=now, trust=trust,
        error="CertifyInfoError", match="qualifying data is not this enrollment's nonce",
    )  # fmt: skip

    bad_magic = bytearray(b64url_decode(good["certify_info"]))
    bad_magic[0] ^= 0x01
    magic_statement = dict(good)
    magic_statement["certify_info"] = b64url_encode(bytes(bad_magic))
    cases["refuse_bad_magic"] = _case(
        "certify_info whose magic is not TPM_GENERATED_VALUE",
        magic_statement, jwk=p384.public_jwk(), nonce=nonce, now=now, trust=trust,
        error="CertifyInfoError", match="magic is not TPM_GENERATED_VALUE",
    )  # fmt: skip

    cases["refuse_jwk_not_certified_key"] = _case(
        "a valid statement enrolled with a different public_jwk",
        good, jwk=public_jwk(ec.generate_private_key(ec.SECP256R1()).public_key()), nonce=nonce,
        now=now, trust=trust, error="KeyMismatchError",
        match="public_jwk is not the key the TPM certified",
    )  # fmt: skip

    cases.update(_software_key_cases(lab, good, now, trust))
    cases.update(parameter_cases(cases["valid_ecc_p384_ek"], cases["valid_rsa2048_ek"]))
    return cases


def _software_key_cases(
    lab: Lab, good: dict[str, Any], now: dt.datetime, trust: list[str]
) -> dict[str, Case]:
    """A software key dressed as a TPM key: hand-made public areas and a forged certify."""
    tpm_like = _A.FIXED_TPM | _A.FIXED_PARENT | _A.SENSITIVE_DATA_ORIGIN | _A.USER_WITH_AUTH
    signing_key = ec.generate_private_key(ec.SECP256R1())
    fake_ak = ec.generate_private_key(ec.SECP256R1())
    key_public = ecc_tpmt_public(signing_key.public_key(), tpm_like | _A.SIGN_ENCRYPT)
    ak_public = ecc_tpmt_public(fake_ak.public_key(), tpm_like | _A.SIGN_ENCRYPT | _A.RESTRICTED)
    nonce = os.urandom(32)
    info, sig = forged_certify(ak=fake_ak, ak_public=ak_public, key_public=key_public, nonce=nonce)
    jwk = public_jwk(signing_key.public_key())

    ek_cert, ek_public, _attacker_ca = attacker_ca_ek(now)
    own_ca = build_tpm2_statement(
        ek_cert=ek_cert, ek_public=ek_public, ak_public=ak_public, key_public=key_public,
        certify_info=info, certify_signature=sig,
    )  # fmt: skip
    real_ek = dict(own_ca)
    real_ek.update(ek_cert=good["ek_cert"], ek_public=good["ek_public"])
    return {
        "refuse_software_key_own_ek_ca": _case(
            "software key with a hand-made EK certificate from the attacker's own CA",
            own_ca, jwk=jwk, nonce=nonce, now=now, trust=trust,
            error="EkCertificateError", match="does not chain to the EK trust store",
        ),
        "software_key_copied_ek_passes_until_activation": _case(
            "software key + forged certify + a real TPM's (public) EK certificate: steps 1-8 "
            "cannot tell, so the verifier MUST NOT record tpm2 before credential activation, "
            "which only the EK's TPM holding this AK could answer",
            real_ek, jwk=jwk, nonce=nonce, now=now, trust=trust,
        ),
    }  # fmt: skip


def _pem_to_der(pem: str) -> bytes:
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
