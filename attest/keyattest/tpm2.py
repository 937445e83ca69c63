"""``tpm2`` key attestation: prove the enrolled P-256 key lives in a TPM with a trusted EK.

Two round trips, the pattern of go-attestation / SPIRE tpm_devid / Keylime's registrar:

1. ``verify_tpm2_key_attestation`` checks the statement (steps 1-8 below): the EK is vouched
   for by a TPM vendor, and an attestation key (AK) certified the signing key with
   TPM2_Certify over the server's enrollment nonce.
2. ``make_activation_challenge`` encrypts a fresh secret to the EK, bound to the AK's name
   (TPM2_MakeCredential). Only the TPM that holds that EK *and* that AK can return the secret
   (TPM2_ActivateCredential); the server compares it with ``verify_activation_secret``.

Step 1 alone proves nothing about which TPM the AK is in; the key class ``tpm2`` may be
recorded only after step 2 succeeds (Keylime CVE-2022-1053: AK/EK binding not enforced).

References: TPM 2.0 Library Part 1 §24 (credential protection), Part 2 §10.12 (TPMS_ATTEST),
Part 3 §18.2 (TPM2_Certify), §12.5-12.6 (Activate/MakeCredential); TCG EK Credential Profile.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from attest.jwk import load_public_jwk, public_jwk
from attest.keyattest.tpm2_statement import Tpm2Statement, parse_tpm2_statement
from attest.keys import KeyClass
from attest.tpm.attestation import CertifyInfo, verify_tpm_signature
from attest.tpm.constants import (
    STRONG_HASHES,
    TPM_GENERATED_VALUE,
    ObjectAttributes,
    TpmAlg,
    TpmEccCurve,
    TpmSt,
    alg_label,
)
from attest.tpm.credential import make_credential
from attest.tpm.ekcert import TrustStore, verify_ek_certificate
from attest.tpm.errors import (
    ActivationError,
    CertifyInfoError,
    EkCertificateError,
    KeyMismatchError,
    TpmAttributeError,
    TpmSignatureError,
)
from attest.tpm.public import EccParameters, TpmPublic, curve_label, sha256_hex

SECRET_SIZE = 32
_A = ObjectAttributes
_RESIDENT = _A.FIXED_TPM | _A.FIXED_PARENT | _A.SENSITIVE_DATA_ORIGIN
_AK_REQUIRED = _RESIDENT | _A.RESTRICTED | _A.SIGN_ENCRYPT
_EK_REQUIRED = _A.FIXED_TPM | _A.FIXED_PARENT | _A.RESTRICTED | _A.DECRYPT
_KEY_REQUIRED = _RESIDENT | _A.SIGN_ENCRYPT
_AK_CURVES = frozenset({TpmEccCurve.NIST_P256, TpmEccCurve.NIST_P384})
_MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class VerifiedTpm2Key:
    """A ``tpm2`` statement whose steps 1-8 passed; class ``tpm2`` only after activation."""

    public_jwk: dict[str, str]
    ek_certificate: x509.Certificate
    ek_chain: tuple[x509.Certificate, ...]
    ek_public: TpmPublic
    ak_public: TpmPublic
    key_public: TpmPublic
    certify_info: CertifyInfo
    key_class: KeyClass = KeyClass.TPM2

    @property
    def ak_name(self) -> bytes:
        """The AK's TPM name; MakeCredential binds the secret to it."""
        return self.ak_public.name

    @property
    def key_name(self) -> bytes:
        """The certified signing key's TPM name."""
        return self.key_public.name

    @property
    def ek_certificate_sha256(self) -> str:
        """Hex SHA-256 of the EK certificate DER: a stable TPM identifier for audit records."""
        return self.ek_certificate.fingerprint(hashes.SHA256()).hex()

    @property
    def ek_public_sha256(self) -> str:
        """Hex SHA-256 of the EK's TPMT_PUBLIC, for audit records."""
        return sha256_hex(self.ek_public.raw)


@dataclass(frozen=True)
class ActivationChallenge:
    """``credential_blob`` and ``encrypted_secret`` go to the device; ``secret`` stays."""

    credential_blob: bytes
    encrypted_secret: bytes
    secret: bytes


def _check_ek(statement: Tpm2Statement) -> None:
    cert_key = statement.ek_cert.public_key()
    ek_key = statement.ek_public.public_key()
    same = (
        isinstance(cert_key, rsa.RSAPublicKey)
        and isinstance(ek_key, rsa.RSAPublicKey)
        and cert_key.public_numbers() == ek_key.public_numbers()
    ) or (
        isinstance(cert_key, ec.EllipticCurvePublicKey)
        and isinstance(ek_key, ec.EllipticCurvePublicKey)
        and cert_key.curve.name == ek_key.curve.name
        and cert_key.public_numbers() == ek_key.public_numbers()
    )
    if not same:
        raise EkCertificateError(
            "the EK certificate's public key is not the submitted EK public area (ek_public)"
        )
    if not statement.ek_public.has(_EK_REQUIRED):
        raise TpmAttributeError(
            "the EK must be a fixedTPM, fixedParent, restricted decryption key; got "
            f"{statement.ek_public.attributes!r}"
        )


def _check_ak(ak: TpmPublic) -> None:
    if not ak.has(_AK_REQUIRED) or ak.has(_A.DECRYPT):
        raise TpmAttributeError(
            "the AK must be a restricted signing key with fixedTPM, fixedParent and "
            f"sensitiveDataOrigin, and not a decryption key; got {ak.attributes!r}"
        )
    if ak.name_alg not in STRONG_HASHES:
        raise TpmAttributeError(f"the AK's nameAlg {alg_label(ak.name_alg)} is too weak")
    params = ak.parameters
    scheme = params.scheme
    if scheme.hash_alg not in STRONG_HASHES:
        raise TpmAttributeError(
            f"the AK's signing scheme {alg_label(scheme.scheme)}/{alg_label(scheme.hash_alg)} "
            "is not accepted; use SHA-256 or stronger"
        )
    if isinstance(params, EccParameters):
        if scheme.scheme != TpmAlg.ECDSA or params.curve not in _AK_CURVES:
            raise TpmAttributeError(
                f"an ECC AK must use ECDSA on P-256 or P-384; got {alg_label(scheme.scheme)} "
                f"on {curve_label(params.curve)}"
            )
    elif scheme.scheme not in (TpmAlg.RSASSA, TpmAlg.RSAPSS) or params.key_bits < _MIN_RSA_BITS:
        raise TpmAttributeError(
            f"an RSA AK must use RSASSA or RSAPSS with at least {_MIN_RSA_BITS} bits; got "
            f"{alg_label(scheme.scheme)} with {params.key_bits} bits"
        )


def _check_certify_info(info: CertifyInfo, expected_nonce: bytes) -> None:
    if info.magic != TPM_GENERATED_VALUE:
        raise CertifyInfoError(
            "certify_info magic is not TPM_GENERATED_VALUE: the structure was not made by a TPM"
        )
    if info.type != TpmSt.ATTEST_CERTIFY:
        raise CertifyInfoError(
            f"certify_info type 0x{info.type:04x} is not TPM_ST_ATTEST_CERTIFY (0x8017)"
        )
    if not hmac.compare_digest(info.extra_data, expected_nonce):
        raise CertifyInfoError(
            "certify_info qualifying data is not this enrollment's nonce (replayed or stale "
            "certification); fetch a fresh nonce and certify again"
        )


def _check_signing_key(key: TpmPublic, expected: ec.EllipticCurvePublicKey) -> None:
    if not key.has(_KEY_REQUIRED) or key.has(_A.RESTRICTED) or key.has(_A.DECRYPT):
        raise TpmAttributeError(
            "the signing key must have fixedTPM, fixedParent, sensitiveDataOrigin and sign, "
            f"and be neither restricted nor a decryption key; got {key.attributes!r}"
        )
    if key.name_alg not in STRONG_HASHES:
        raise TpmAttributeError(f"the signing key's nameAlg {alg_label(key.name_alg)} is too weak")
    params = key.parameters
    if not isinstance(params, EccParameters) or params.curve != TpmEccCurve.NIST_P256:
        raise TpmAttributeError("the signing key must be an ECC NIST P-256 key (ES256)")
    if params.scheme.scheme not in (TpmAlg.NULL, TpmAlg.ECDSA):
        raise TpmAttributeError(
            f"the signing key's scheme {alg_label(params.scheme.scheme)} is not ECDSA"
        )
    tpm_key = key.public_key()
    assert isinstance(tpm_key, ec.EllipticCurvePublicKey)
    if tpm_key.public_numbers() != expected.public_numbers():
        raise KeyMismatchError(
            "public_jwk is not the key the TPM certified (key_public point differs)"
        )


def verify_tpm2_key_attestation(
    statement: Mapping[str, object],
    *,
    expected_jwk: Mapping[str, str],
    expected_nonce: bytes,
    trust_store: TrustStore,
    now: datetime,
) -> VerifiedTpm2Key:
    """Verify a ``tpm2`` statement for ``expected_jwk``; raise a KeyAttestationError subclass.

    ``now`` must be timezone-aware. A malformed ``expected_jwk`` raises ``FormatError``.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    expected_key = load_public_jwk(expected_jwk)

    # (1) parse the untrusted statement into TPM structures, keeping exact bytes (STYLE 5)
    parsed = parse_tpm2_statement(statement)

    # (2) EK certificate chains to a trusted TPM vendor CA (CVE-2021-3406; EK profile §3)
    chain = verify_ek_certificate(
        parsed.ek_cert, intermediates=parsed.ek_chain, trust_store=trust_store, now=now
    )

    # (3) the EK certificate certifies exactly the submitted EK public area
    _check_ek(parsed)

    # (4) AK is a TPM-resident restricted signing key with a secure scheme (Part 1 §25.2)
    _check_ak(parsed.ak_public)

    # (5) TPM_GENERATED magic, TPM_ST_ATTEST_CERTIFY, qualifying data == nonce (Part 3 §18.2)
    _check_certify_info(parsed.certify_info, expected_nonce)

    # (6) the certified object is the submitted signing key: name == nameAlg || H(TPMT_PUBLIC)
    if not hmac.compare_digest(parsed.certify_info.name, parsed.key_public.name):
        raise CertifyInfoError(
            "the certified name is not the name of key_public: the TPM certified another key"
        )

    # (7) the AK signed certify_info, with the scheme its (restricted) public area fixes
    ak_scheme = parsed.ak_public.parameters.scheme
    signature = parsed.certify_signature
    if (signature.sig_alg, signature.hash_alg) != (ak_scheme.scheme, ak_scheme.hash_alg):
        raise TpmSignatureError(
            f"certify signature scheme {alg_label(signature.sig_alg)}/"
            f"{alg_label(signature.hash_alg)} is not the AK's scheme"
        )
    verify_tpm_signature(parsed.ak_public.public_key(), signature, parsed.certify_info.raw)

    # (8) signing key: TPM-resident, unrestricted ECDSA P-256, and the key being enrolled
    _check_signing_key(parsed.key_public, expected_key)

    return VerifiedTpm2Key(
        public_jwk=public_jwk(expected_key),
        ek_certificate=parsed.ek_cert,
        ek_chain=chain,
        ek_public=parsed.ek_public,
        ak_public=parsed.ak_public,
        key_public=parsed.key_public,
        certify_info=parsed.certify_info,
    )


def make_activation_challenge(
    verified: VerifiedTpm2Key, *, secret: bytes | None = None
) -> ActivationChallenge:
    """MakeCredential to the verified EK, bound to the AK name; ``secret`` is random by default."""
    chosen = os.urandom(SECRET_SIZE) if secret is None else secret
    credential = make_credential(verified.ek_public, verified.ak_name, chosen)
    return ActivationChallenge(
        credential_blob=credential.credential_blob,
        encrypted_secret=credential.encrypted_secret,
        secret=chosen,
    )


def activation_secret_sha256(secret: bytes) -> str:
    """What the verifier keeps of an issued activation secret (never the secret itself)."""
    return hashlib.sha256(secret).hexdigest()


def verify_activation_secret(presented: bytes, *, expected_sha256: str) -> None:
    """Constant-time comparison of the device's answer with the issued secret's hash."""
    if not hmac.compare_digest(activation_secret_sha256(presented), expected_sha256):
        raise ActivationError(
            "the activation secret does not match: the AK is not in the TPM that holds the EK"
        )


__all__ = [
    "ActivationChallenge",
    "VerifiedTpm2Key",
    "activation_secret_sha256",
    "make_activation_challenge",
    "verify_activation_secret",
    "verify_tpm2_key_attestation",
]
