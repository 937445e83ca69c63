"""TPM 2.0 constants the verifier needs (TPM 2.0 Library Part 2, "Structures", rev 1.59)."""

from __future__ import annotations

import enum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from attest.tpm.errors import TpmAttributeError

TPM_GENERATED_VALUE = 0xFF544347
"""Part 2 §6.2: the magic that starts every TPM-generated attestation structure ("\\xffTCG")."""


class TpmSt(enum.IntEnum):
    """TPM_ST structure tags (Part 2 §6.9), attestation types only."""

    ATTEST_CERTIFY = 0x8017
    ATTEST_QUOTE = 0x8018
    ATTEST_SESSION_AUDIT = 0x8016
    ATTEST_COMMAND_AUDIT = 0x8015
    ATTEST_TIME = 0x8019
    ATTEST_CREATION = 0x801A
    ATTEST_NV = 0x8014
    ATTEST_NV_DIGEST = 0x801C


class TpmAlg(enum.IntEnum):
    """TPM_ALG_ID values (Part 2 §6.3; TCG Algorithm Registry)."""

    ERROR = 0x0000
    RSA = 0x0001
    SHA1 = 0x0004
    HMAC = 0x0005
    AES = 0x0006
    KEYEDHASH = 0x0008
    XOR = 0x000A
    SHA256 = 0x000B
    SHA384 = 0x000C
    SHA512 = 0x000D
    NULL = 0x0010
    SM3_256 = 0x0012
    SM4 = 0x0013
    RSASSA = 0x0014
    RSAES = 0x0015
    RSAPSS = 0x0016
    OAEP = 0x0017
    ECDSA = 0x0018
    ECDH = 0x0019
    ECDAA = 0x001A
    SM2 = 0x001B
    ECSCHNORR = 0x001C
    ECMQV = 0x001D
    KDF1_SP800_56A = 0x0020
    KDF2 = 0x0021
    KDF1_SP800_108 = 0x0022
    ECC = 0x0023
    SYMCIPHER = 0x0025
    CAMELLIA = 0x0026
    SHA3_256 = 0x0027
    SHA3_384 = 0x0028
    SHA3_512 = 0x0029
    CTR = 0x0040
    OFB = 0x0041
    CBC = 0x0042
    CFB = 0x0043
    ECB = 0x0044


class TpmEccCurve(enum.IntEnum):
    """TPM_ECC_CURVE values (Part 2 §6.4)."""

    NONE = 0x0000
    NIST_P192 = 0x0001
    NIST_P224 = 0x0002
    NIST_P256 = 0x0003
    NIST_P384 = 0x0004
    NIST_P521 = 0x0005
    BN_P256 = 0x0010
    BN_P638 = 0x0011
    SM2_P256 = 0x0020


class ObjectAttributes(enum.IntFlag):
    """TPMA_OBJECT bits (Part 2 §8.3)."""

    FIXED_TPM = 1 << 1
    ST_CLEAR = 1 << 2
    FIXED_PARENT = 1 << 4
    SENSITIVE_DATA_ORIGIN = 1 << 5
    USER_WITH_AUTH = 1 << 6
    ADMIN_WITH_POLICY = 1 << 7
    NO_DA = 1 << 10
    ENCRYPTED_DUPLICATION = 1 << 11
    RESTRICTED = 1 << 16
    DECRYPT = 1 << 17
    SIGN_ENCRYPT = 1 << 18
    X509_SIGN = 1 << 19


HASHES: dict[int, type[hashes.HashAlgorithm]] = {
    TpmAlg.SHA1: hashes.SHA1,
    TpmAlg.SHA256: hashes.SHA256,
    TpmAlg.SHA384: hashes.SHA384,
    TpmAlg.SHA512: hashes.SHA512,
}
"""Name and signature hash algorithms this verifier can compute."""

STRONG_HASHES = frozenset({TpmAlg.SHA256, TpmAlg.SHA384, TpmAlg.SHA512})
"""Hashes accepted for names and signatures of keys we attest (SHA-1 is refused)."""

CURVES: dict[int, ec.EllipticCurve] = {
    TpmEccCurve.NIST_P256: ec.SECP256R1(),
    TpmEccCurve.NIST_P384: ec.SECP384R1(),
    TpmEccCurve.NIST_P521: ec.SECP521R1(),
}
"""ECC curves this verifier can use."""


def hash_for(alg: int) -> hashes.HashAlgorithm:
    """The ``cryptography`` hash object for a TPM hash algorithm id."""
    try:
        return HASHES[alg]()
    except KeyError:
        raise TpmAttributeError(f"unsupported TPM hash algorithm 0x{alg:04x}") from None


def alg_label(alg: int) -> str:
    """A readable name for an algorithm id, for error messages."""
    try:
        return TpmAlg(alg).name
    except ValueError:
        return f"0x{alg:04x}"
