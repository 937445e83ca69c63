"""TPM 2.0 verifier primitives in pure Python (``cryptography`` only, no TSS).

Parsing of TPMT_PUBLIC / TPMS_ATTEST / TPMT_SIGNATURE, TPM names, software MakeCredential for
RSA and ECC endorsement keys, and EK certificate chains. ``attest.keyattest.tpm2`` composes them
into the enrollment check; the agent-side TPM code lives in ``attest.keys.tpm2``.
"""

from __future__ import annotations

from attest.tpm.attestation import (
    CertifyInfo,
    ClockInfo,
    TpmSignature,
    parse_certify_info,
    parse_signature,
    verify_tpm_signature,
)
from attest.tpm.constants import TPM_GENERATED_VALUE, ObjectAttributes, TpmAlg, TpmEccCurve, TpmSt
from attest.tpm.credential import Credential, kdfa, kdfe, make_credential
from attest.tpm.ekcert import (
    TrustStore,
    load_trust_store,
    trust_store_from_certificates,
    verify_ek_certificate,
)
from attest.tpm.errors import (
    ActivationError,
    CertifyInfoError,
    EkCertificateError,
    KeyMismatchError,
    TpmAttributeError,
    TpmSignatureError,
    TpmStructureError,
    TrustStoreError,
)
from attest.tpm.public import (
    EccParameters,
    RsaParameters,
    TpmPublic,
    parse_tpm2b_public,
    parse_tpmt_public,
    tpm_name,
)

__all__ = [
    "TPM_GENERATED_VALUE",
    "ActivationError",
    "CertifyInfo",
    "CertifyInfoError",
    "ClockInfo",
    "Credential",
    "EccParameters",
    "EkCertificateError",
    "KeyMismatchError",
    "ObjectAttributes",
    "RsaParameters",
    "TpmAlg",
    "TpmAttributeError",
    "TpmEccCurve",
    "TpmPublic",
    "TpmSignature",
    "TpmSignatureError",
    "TpmSt",
    "TpmStructureError",
    "TrustStore",
    "TrustStoreError",
    "kdfa",
    "kdfe",
    "load_trust_store",
    "make_credential",
    "parse_certify_info",
    "parse_signature",
    "parse_tpm2b_public",
    "parse_tpmt_public",
    "tpm_name",
    "trust_store_from_certificates",
    "verify_ek_certificate",
    "verify_tpm_signature",
]
