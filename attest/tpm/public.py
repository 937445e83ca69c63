"""TPMT_PUBLIC / TPM2B_PUBLIC parsing and TPM object names (Part 2 §12.2, Part 1 §16).

``parse_tpmt_public`` keeps the exact bytes: the object's name is computed over them
(``nameAlg || H_nameAlg(TPMT_PUBLIC)``), never over a re-serialization.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from attest.tpm.constants import (
    CURVES,
    ObjectAttributes,
    TpmAlg,
    TpmEccCurve,
    alg_label,
    hash_for,
)
from attest.tpm.errors import TpmAttributeError, TpmStructureError
from attest.tpm.wire import WireReader

_DEFAULT_RSA_EXPONENT = 65537

# Part 2 §11.2.3: schemes whose details are a TPMS_SCHEME_HASH (one hashAlg), and ECDAA's
# TPMS_SCHEME_ECDAA (hashAlg + count). RSAES has empty details.
_HASH_SCHEMES = frozenset(
    {
        TpmAlg.RSASSA,
        TpmAlg.RSAPSS,
        TpmAlg.OAEP,
        TpmAlg.ECDSA,
        TpmAlg.ECDH,
        TpmAlg.ECSCHNORR,
        TpmAlg.SM2,
        TpmAlg.ECMQV,
        TpmAlg.HMAC,
        TpmAlg.XOR,
        TpmAlg.KDF1_SP800_56A,
        TpmAlg.KDF2,
        TpmAlg.KDF1_SP800_108,
    }
)


@dataclass(frozen=True)
class SymmetricDef:
    """TPMT_SYM_DEF_OBJECT: the storage/protection cipher of a parent or EK."""

    algorithm: int
    key_bits: int = 0
    mode: int = TpmAlg.NULL


@dataclass(frozen=True)
class SigScheme:
    """A TPMT_*_SCHEME: the scheme id and its hash (``TpmAlg.NULL`` when none)."""

    scheme: int
    hash_alg: int = TpmAlg.NULL


@dataclass(frozen=True)
class RsaParameters:
    """TPMS_RSA_PARMS and the modulus from ``unique``."""

    symmetric: SymmetricDef
    scheme: SigScheme
    key_bits: int
    exponent: int
    modulus: bytes


@dataclass(frozen=True)
class EccParameters:
    """TPMS_ECC_PARMS and the public point from ``unique`` (coordinates as sent)."""

    symmetric: SymmetricDef
    scheme: SigScheme
    curve: int
    kdf: SigScheme
    x: bytes
    y: bytes


@dataclass(frozen=True)
class TpmPublic:
    """A parsed TPMT_PUBLIC plus its exact bytes."""

    raw: bytes
    type: int
    name_alg: int
    attributes: ObjectAttributes
    auth_policy: bytes
    parameters: RsaParameters | EccParameters

    @property
    def name(self) -> bytes:
        """The TPM name: ``nameAlg`` (2 bytes) followed by H_nameAlg(TPMT_PUBLIC)."""
        return tpm_name(self.name_alg, self.raw)

    def has(self, flags: ObjectAttributes) -> bool:
        """True if every bit of ``flags`` is set."""
        return (self.attributes & flags) == flags

    def public_key(self) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
        """The key as a ``cryptography`` public key; raises if the point or modulus is bad."""
        params = self.parameters
        if isinstance(params, RsaParameters):
            exponent = params.exponent or _DEFAULT_RSA_EXPONENT
            try:
                return rsa.RSAPublicNumbers(
                    exponent, int.from_bytes(params.modulus, "big")
                ).public_key()
            except ValueError as exc:
                raise TpmStructureError(f"TPMT_PUBLIC RSA key is invalid: {exc}") from exc
        curve = CURVES.get(params.curve)
        if curve is None:
            raise TpmAttributeError(f"unsupported ECC curve {curve_label(params.curve)}")
        try:
            return ec.EllipticCurvePublicNumbers(
                int.from_bytes(params.x, "big"), int.from_bytes(params.y, "big"), curve
            ).public_key()
        except ValueError as exc:
            raise TpmStructureError("TPMT_PUBLIC ECC point is not on its curve") from exc


def tpm_name(name_alg: int, tpmt_public: bytes) -> bytes:
    """Part 1 §16: ``nameAlg || H_nameAlg(publicArea)``."""
    digest = hashes.Hash(hash_for(name_alg))
    digest.update(tpmt_public)
    return name_alg.to_bytes(2, "big") + digest.finalize()


def curve_label(curve: int) -> str:
    """A readable curve name for error messages."""
    try:
        return TpmEccCurve(curve).name
    except ValueError:
        return f"0x{curve:04x}"


def _symmetric(reader: WireReader) -> SymmetricDef:
    algorithm = reader.u16()
    if algorithm == TpmAlg.NULL:
        return SymmetricDef(algorithm)
    if algorithm == TpmAlg.XOR:  # keyedHash parents only; the "mode" is a hash
        return SymmetricDef(algorithm, 0, reader.u16())
    return SymmetricDef(algorithm, reader.u16(), reader.u16())


def _scheme(reader: WireReader) -> SigScheme:
    scheme = reader.u16()
    if scheme == TpmAlg.NULL or scheme == TpmAlg.RSAES:
        return SigScheme(scheme)
    if scheme == TpmAlg.ECDAA:
        hash_alg = reader.u16()
        reader.u16()  # count: only meaningful for ECDAA, which we never accept
        return SigScheme(scheme, hash_alg)
    if scheme in _HASH_SCHEMES:
        return SigScheme(scheme, reader.u16())
    raise TpmStructureError(f"TPMT_PUBLIC names unknown scheme {alg_label(scheme)}")


def parse_tpmt_public(data: bytes) -> TpmPublic:
    """Parse a TPMT_PUBLIC (RSA or ECC); the whole buffer must be consumed."""
    reader = WireReader(data, "TPMT_PUBLIC")
    obj_type = reader.u16()
    name_alg = reader.u16()
    attributes = ObjectAttributes(reader.u32())
    auth_policy = reader.tpm2b()
    parameters: RsaParameters | EccParameters
    if obj_type == TpmAlg.RSA:
        symmetric = _symmetric(reader)
        scheme = _scheme(reader)
        key_bits = reader.u16()
        exponent = reader.u32()
        modulus = reader.tpm2b()
        parameters = RsaParameters(symmetric, scheme, key_bits, exponent, modulus)
    elif obj_type == TpmAlg.ECC:
        symmetric = _symmetric(reader)
        scheme = _scheme(reader)
        curve = reader.u16()
        kdf = _scheme(reader)
        x = reader.tpm2b()
        y = reader.tpm2b()
        parameters = EccParameters(symmetric, scheme, curve, kdf, x, y)
    else:
        raise TpmStructureError(
            f"TPMT_PUBLIC type {alg_label(obj_type)} is not supported; only RSA and ECC keys"
        )
    reader.finish()
    return TpmPublic(data, obj_type, name_alg, attributes, auth_policy, parameters)


def parse_tpm2b_public(data: bytes) -> TpmPublic:
    """Parse a TPM2B_PUBLIC: a UINT16 size then exactly one TPMT_PUBLIC."""
    reader = WireReader(data, "TPM2B_PUBLIC")
    inner = reader.tpm2b()
    reader.finish()
    return parse_tpmt_public(inner)


def public_numbers_equal(left: rsa.RSAPublicKey | ec.EllipticCurvePublicKey, right: object) -> bool:
    """True if ``right`` is the same public key as ``left`` (same type, curve and numbers)."""
    if isinstance(left, rsa.RSAPublicKey) and isinstance(right, rsa.RSAPublicKey):
        return left.public_numbers() == right.public_numbers()
    if isinstance(left, ec.EllipticCurvePublicKey) and isinstance(right, ec.EllipticCurvePublicKey):
        return (
            left.curve.name == right.curve.name and left.public_numbers() == right.public_numbers()
        )
    return False


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256, for audit-friendly fingerprints of TPM structures."""
    return hashlib.sha256(data).hexdigest()
