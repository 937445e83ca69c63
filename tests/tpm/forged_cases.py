"""One forged ``tpm2`` statement per parameter check of steps 3-8 (attest/keyattest/tpm2.py).

A software key can copy a real TPM's public EK certificate and sign a hand-made TPMS_ATTEST
with a software "AK", so every public area below is the attacker's choice. Each refusing case
changes one parameter of an otherwise accepted forgery and reaches exactly the check it is
named after; the accepted cases sit on the edges of those checks (an RSA-2048 AK, a P-384 AK,
a signing key with the NULL scheme). Pure Python: ``build_cases`` adds these to the vectors.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from attest.b64 import b64url_decode, b64url_encode
from attest.jwk import public_jwk
from attest.keyattest.tpm2_statement import build_tpm2_statement
from attest.tpm.constants import (
    HASHES,
    TPM_GENERATED_VALUE,
    ObjectAttributes,
    TpmAlg,
    TpmEccCurve,
    TpmSt,
)
from attest.tpm.public import tpm_name
from attest.tpm.wire import tpm2b

Case = dict[str, Any]
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_A = ObjectAttributes
TPM_LIKE = _A.FIXED_TPM | _A.FIXED_PARENT | _A.SENSITIVE_DATA_ORIGIN | _A.USER_WITH_AUTH
AK_ATTRIBUTES = TPM_LIKE | _A.RESTRICTED | _A.SIGN_ENCRYPT
KEY_ATTRIBUTES = TPM_LIKE | _A.SIGN_ENCRYPT
_CURVE_IDS = {"secp256r1": TpmEccCurve.NIST_P256, "secp384r1": TpmEccCurve.NIST_P384}


def _u16(value: int) -> bytes:
    return value.to_bytes(2, "big")


def tpmt_public(
    key: PublicKey,
    attributes: ObjectAttributes,
    *,
    name_alg: int = TpmAlg.SHA256,
    scheme: int = TpmAlg.ECDSA,
    scheme_hash: int = TpmAlg.SHA256,
    curve: int | None = None,
) -> bytes:
    """Marshal a TPMT_PUBLIC (Part 2 §12.2.4) for ``key`` with the given parameters."""
    if isinstance(key, rsa.RSAPublicKey) and scheme == TpmAlg.ECDSA:
        scheme = TpmAlg.RSASSA
    scheme_bytes = _u16(scheme) + (b"" if scheme == TpmAlg.NULL else _u16(scheme_hash))
    head = _u16(name_alg) + int(attributes).to_bytes(4, "big") + tpm2b(b"") + _u16(TpmAlg.NULL)
    if isinstance(key, rsa.RSAPublicKey):
        modulus = key.public_numbers().n.to_bytes(key.key_size // 8, "big")
        return (
            _u16(TpmAlg.RSA) + head + scheme_bytes + _u16(key.key_size) + bytes(4) + tpm2b(modulus)
        )
    size = (key.curve.key_size + 7) // 8
    numbers = key.public_numbers()
    curve_id = _CURVE_IDS[key.curve.name] if curve is None else curve
    return (
        _u16(TpmAlg.ECC)
        + head
        + scheme_bytes
        + _u16(curve_id)
        + _u16(TpmAlg.NULL)  # kdf
        + tpm2b(numbers.x.to_bytes(size, "big"))
        + tpm2b(numbers.y.to_bytes(size, "big"))
    )


def _name(public: bytes) -> bytes:
    return tpm_name(int.from_bytes(public[2:4], "big"), public)


def forged_certify(
    ak: PrivateKey,
    ak_public: bytes,
    key_public: bytes,
    nonce: bytes,
    *,
    sig_hash: int = TpmAlg.SHA256,
    attest_type: int = TpmSt.ATTEST_CERTIFY,
) -> tuple[bytes, bytes]:
    """A TPMS_ATTEST naming ``key_public`` and its TPMT_SIGNATURE by ``ak`` (ECDSA or RSASSA)."""
    info = (
        TPM_GENERATED_VALUE.to_bytes(4, "big")
        + _u16(attest_type)
        + tpm2b(_name(ak_public))
        + tpm2b(nonce)
        + (123456).to_bytes(8, "big")
        + (1).to_bytes(4, "big")
        + bytes(4)
        + b"\x01"
        + (0x2019102300000000).to_bytes(8, "big")
        + tpm2b(_name(key_public))
        + tpm2b(_name(key_public))
    )
    algorithm = HASHES[sig_hash]()
    if isinstance(ak, rsa.RSAPrivateKey):
        blob = ak.sign(info, padding.PKCS1v15(), algorithm)
        return info, _u16(TpmAlg.RSASSA) + _u16(sig_hash) + tpm2b(blob)
    r, s = decode_dss_signature(ak.sign(info, ec.ECDSA(algorithm)))
    size = (ak.curve.key_size + 7) // 8
    signature = tpm2b(r.to_bytes(size, "big")) + tpm2b(s.to_bytes(size, "big"))
    return info, _u16(TpmAlg.ECDSA) + _u16(sig_hash) + signature


def parameter_cases(p384_case: Case, rsa_case: Case) -> dict[str, Case]:
    """The cases, around the EKs of two accepted live cases (a P-384 and an RSA-2048 EK)."""
    good: dict[str, Any] = p384_case["statement"]
    rsa2048 = rsa.generate_private_key(65537, 2048)
    rsa1024 = rsa.generate_private_key(65537, 1024)  # noqa: S505 -- the weak AK under test

    def p256() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def forge(
        description: str,
        *,
        ak: PrivateKey | None = None,
        ak_public: Callable[[PublicKey], bytes] | None = None,
        key_public: Callable[[PublicKey], bytes] | None = None,
        key: PrivateKey | None = None,
        sig_hash: int = TpmAlg.SHA256,
        attest_type: int = TpmSt.ATTEST_CERTIFY,
        error: str | None = None,
        match: str | None = None,
    ) -> Case:
        ak = ak or p256()
        signing_key = key or p256()
        ak_area = (ak_public or (lambda k: tpmt_public(k, AK_ATTRIBUTES)))(ak.public_key())
        key_area = (key_public or (lambda k: tpmt_public(k, KEY_ATTRIBUTES)))(
            signing_key.public_key()
        )
        nonce = os.urandom(32)
        info, sig = forged_certify(
            ak, ak_area, key_area, nonce, sig_hash=sig_hash, attest_type=attest_type
        )
        statement = build_tpm2_statement(
            ek_cert=b64url_decode(good["ek_cert"]), ek_public=b64url_decode(good["ek_public"]),
            ak_public=ak_area, key_public=key_area, certify_info=info, certify_signature=sig,
        )  # fmt: skip
        jwk_key = p256()  # a JWK is P-256 by definition: other keys are refused before it
        if isinstance(signing_key, ec.EllipticCurvePrivateKey) and signing_key.key_size == 256:
            jwk_key = signing_key
        expect: dict[str, str] = {"result": "ok"} if error is None else {"error": error}
        if match is not None:
            expect["match"] = match
        return {
            "description": description, "statement": statement,
            "expected_jwk": public_jwk(jwk_key.public_key()),
            "expected_nonce": b64url_encode(nonce),
            "now": p384_case["now"], "trust_store_pem": p384_case["trust_store_pem"],
            "expect": expect,
        }  # fmt: skip

    def ak_with(attributes: _A = AK_ATTRIBUTES, **kwargs: Any) -> Callable[[PublicKey], bytes]:
        return lambda k: tpmt_public(k, attributes, **kwargs)

    def key_with(attributes: _A = KEY_ATTRIBUTES, **kwargs: Any) -> Callable[[PublicKey], bytes]:
        return lambda k: tpmt_public(k, attributes, **kwargs)

    attr = "TpmAttributeError"
    cases = {
        "software_key_rsa2048_ak_passes_until_activation": forge(
            "forged with an RSASSA AK of exactly the minimum 2048 bits: steps 1-8 pass",
            ak=rsa2048,
        ),
        "software_key_p384_ak_passes_until_activation": forge(
            "forged with an ECDSA P-384/SHA-384 AK and a signing key with the NULL scheme",
            ak=ec.generate_private_key(ec.SECP384R1()),
            ak_public=ak_with(scheme_hash=TpmAlg.SHA384),
            sig_hash=TpmAlg.SHA384,
            key_public=key_with(scheme=TpmAlg.NULL),
        ),
        "refuse_ak_name_alg_sha1": forge(
            "AK public area with nameAlg SHA-1", ak_public=ak_with(name_alg=TpmAlg.SHA1),
            error=attr, match="the AK's nameAlg SHA1 is too weak",
        ),
        "refuse_ak_scheme_sha1": forge(
            "AK signing scheme ECDSA with SHA-1", ak_public=ak_with(scheme_hash=TpmAlg.SHA1),
            sig_hash=TpmAlg.SHA1,
            error=attr, match="the AK's signing scheme ECDSA/SHA1 is not accepted; use SHA-256",
        ),
        "refuse_ak_ecschnorr": forge(
            "ECC AK with the ECSCHNORR scheme", ak_public=ak_with(scheme=TpmAlg.ECSCHNORR),
            error=attr, match="ECC AK must use ECDSA on P-256 or P-384; got ECSCHNORR on NIST_P256",
        ),
        "refuse_ak_bn_p256": forge(
            "ECDSA AK on the BN P-256 curve", ak_public=ak_with(curve=TpmEccCurve.BN_P256),
            error=attr, match="ECC AK must use ECDSA on P-256 or P-384; got ECDSA on BN_P256",
        ),
        "refuse_ak_rsa1024": forge(
            "RSASSA AK of 1024 bits", ak=rsa1024,
            error=attr, match="at least 2048 bits; got RSASSA with 1024 bits",
        ),
        "refuse_ak_rsa_oaep": forge(
            "RSA-2048 AK with the OAEP (encryption) scheme", ak=rsa2048,
            ak_public=ak_with(scheme=TpmAlg.OAEP),
            error=attr, match="RSA AK must use RSASSA or RSAPSS .*; got OAEP with 2048 bits",
        ),
        "refuse_certify_type_quote": forge(
            "a TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE instead of CERTIFY",
            attest_type=TpmSt.ATTEST_QUOTE,
            error="CertifyInfoError", match="type 0x8018 is not TPM_ST_ATTEST_CERTIFY",
        ),
        "refuse_certify_scheme_not_aks": forge(
            "AK fixed to ECDSA/SHA-384, certify signed with ECDSA/SHA-256",
            ak_public=ak_with(scheme_hash=TpmAlg.SHA384),
            error="TpmSignatureError",
            match="certify signature scheme ECDSA/SHA256 is not the AK's scheme",
        ),
        "refuse_key_restricted": forge(
            "a restricted signing key (it could not sign arbitrary evidence)",
            key_public=key_with(attributes=KEY_ATTRIBUTES | _A.RESTRICTED),
            error=attr, match="neither restricted nor a decryption key",
        ),
        "refuse_key_decrypt": forge(
            "a signing key that is also a decryption key",
            key_public=key_with(attributes=KEY_ATTRIBUTES | _A.DECRYPT),
            error=attr, match="neither restricted nor a decryption key",
        ),
        "refuse_key_name_alg_sha1": forge(
            "signing key public area with nameAlg SHA-1", key_public=key_with(name_alg=TpmAlg.SHA1),
            error=attr, match="the signing key's nameAlg SHA1 is too weak",
        ),
        "refuse_key_p384": forge(
            "a P-384 signing key (evidence is ES256)", key=ec.generate_private_key(ec.SECP384R1()),
            error=attr, match="must be an ECC NIST P-256 key",
        ),
        "refuse_key_rsa": forge(
            "an RSA signing key", key=rsa2048,
            error=attr, match="must be an ECC NIST P-256 key",
        ),
        "refuse_key_ecschnorr": forge(
            "a P-256 signing key fixed to ECSCHNORR", key_public=key_with(scheme=TpmAlg.ECSCHNORR),
            error=attr, match="the signing key's scheme ECSCHNORR is not ECDSA",
        ),
    }  # fmt: skip

    # step 3 on the EK itself: an RSA EK certificate with another modulus, an EK not restricted
    ek_area = b64url_decode(rsa_case["statement"]["ek_public"])
    modulus = rsa2048.public_key().public_numbers().n.to_bytes(256, "big")
    cases["refuse_ek_rsa_cert_other_modulus"] = _edited_ek(
        rsa_case, ek_area[:-256] + modulus,
        "a trusted RSA EK certificate sent with an RSA EK public area of another modulus",
        "EkCertificateError", "EK certificate's public key is not the submitted EK",
    )  # fmt: skip
    ek_area = b64url_decode(good["ek_public"])
    attributes = int.from_bytes(ek_area[4:8], "big") & ~_A.RESTRICTED
    cases["refuse_ek_not_restricted"] = _edited_ek(
        p384_case, ek_area[:4] + attributes.to_bytes(4, "big") + ek_area[8:],
        "the EK's own public area with the restricted attribute cleared (same key)",
        "TpmAttributeError", "EK must be a fixedTPM, fixedParent, restricted decryption key; got",
    )  # fmt: skip
    return cases


def _edited_ek(case: Case, ek_public: bytes, description: str, error: str, match: str) -> Case:
    """An accepted ``case`` with its ``ek_public`` replaced: refused with ``error``."""
    statement = dict(case["statement"], ek_public=b64url_encode(ek_public))
    expect = {"error": error, "match": match}
    return dict(case, description=description, statement=statement, expect=expect)
