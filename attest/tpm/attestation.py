"""TPMS_ATTEST (certify only) and TPMT_SIGNATURE: parsing and signature verification.

Part 2 §10.12 (TPMS_ATTEST, TPMS_CERTIFY_INFO, TPMS_CLOCK_INFO) and §11.3 (TPMT_SIGNATURE).
The attestation's exact bytes are what the TPM signed; ``CertifyInfo.raw`` keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attest.tpm.constants import TpmAlg, TpmSt, alg_label, hash_for
from attest.tpm.errors import TpmSignatureError, TpmStructureError
from attest.tpm.wire import WireReader


@dataclass(frozen=True)
class ClockInfo:
    """TPMS_CLOCK_INFO; counters are obfuscated unless the signer is an endorsement key's child."""

    clock: int
    reset_count: int
    restart_count: int
    safe: bool


@dataclass(frozen=True)
class CertifyInfo:
    """A parsed TPMS_ATTEST of type TPM_ST_ATTEST_CERTIFY, with its exact signed bytes."""

    raw: bytes
    magic: int
    type: int
    qualified_signer: bytes
    extra_data: bytes
    clock_info: ClockInfo
    firmware_version: int
    name: bytes
    qualified_name: bytes


@dataclass(frozen=True)
class TpmSignature:
    """A parsed TPMT_SIGNATURE: ECDSA (r, s) or RSASSA/RSAPSS (one signature blob)."""

    sig_alg: int
    hash_alg: int
    ecdsa_r: int = 0
    ecdsa_s: int = 0
    rsa_signature: bytes = b""


def parse_certify_info(data: bytes) -> CertifyInfo:
    """Parse a TPMS_ATTEST; only the certify variant is accepted (any other type is refused)."""
    reader = WireReader(data, "TPMS_ATTEST")
    magic = reader.u32()
    att_type = reader.u16()
    qualified_signer = reader.tpm2b()
    extra_data = reader.tpm2b()
    clock_info = ClockInfo(reader.u64(), reader.u32(), reader.u32(), reader.u8() != 0)
    firmware_version = reader.u64()
    if att_type != TpmSt.ATTEST_CERTIFY:
        # The union's shape depends on the type; the caller reports the wrong type precisely.
        return CertifyInfo(
            data, magic, att_type, qualified_signer, extra_data, clock_info, firmware_version,
            b"", b"",
        )  # fmt: skip
    name = reader.tpm2b()
    qualified_name = reader.tpm2b()
    reader.finish()
    return CertifyInfo(
        data,
        magic,
        att_type,
        qualified_signer,
        extra_data,
        clock_info,
        firmware_version,
        name,
        qualified_name,
    )


def parse_signature(data: bytes) -> TpmSignature:
    """Parse a TPMT_SIGNATURE of algorithm ECDSA, RSASSA or RSAPSS."""
    reader = WireReader(data, "TPMT_SIGNATURE")
    sig_alg = reader.u16()
    if sig_alg == TpmAlg.ECDSA:
        hash_alg = reader.u16()
        r = int.from_bytes(reader.tpm2b(), "big")
        s = int.from_bytes(reader.tpm2b(), "big")
        reader.finish()
        return TpmSignature(sig_alg, hash_alg, ecdsa_r=r, ecdsa_s=s)
    if sig_alg in (TpmAlg.RSASSA, TpmAlg.RSAPSS):
        hash_alg = reader.u16()
        blob = reader.tpm2b()
        reader.finish()
        return TpmSignature(sig_alg, hash_alg, rsa_signature=blob)
    raise TpmStructureError(
        f"TPMT_SIGNATURE algorithm {alg_label(sig_alg)} is not supported; "
        "only ECDSA, RSASSA and RSAPSS"
    )


def verify_tpm_signature(
    key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey, signature: TpmSignature, message: bytes
) -> None:
    """Verify ``signature`` over ``message`` (the TPM hashes the message with ``hash_alg``)."""
    algorithm = hash_for(signature.hash_alg)
    try:
        if signature.sig_alg == TpmAlg.ECDSA and isinstance(key, ec.EllipticCurvePublicKey):
            der = encode_dss_signature(signature.ecdsa_r, signature.ecdsa_s)
            key.verify(der, message, ec.ECDSA(algorithm))
            return
        if signature.sig_alg == TpmAlg.RSASSA and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature.rsa_signature, message, padding.PKCS1v15(), algorithm)
            return
        if signature.sig_alg == TpmAlg.RSAPSS and isinstance(key, rsa.RSAPublicKey):
            # The TPM signs PSS with the salt as long as the digest (Part 1 §B.7).
            pss = padding.PSS(padding.MGF1(algorithm), padding.PSS.AUTO)
            key.verify(signature.rsa_signature, message, pss, algorithm)
            return
    except InvalidSignature:
        raise TpmSignatureError(
            "the certify signature does not verify with the attestation key (AK)"
        ) from None
    raise TpmSignatureError(
        f"a {alg_label(signature.sig_alg)} signature cannot come from this AK's key type"
    )
