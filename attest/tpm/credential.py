"""TPM2_MakeCredential in software, for RSA and ECC endorsement keys.

TPM 2.0 Library Part 1 §24 ("Credential Protection") and Part 3 §12.6 (TPM2_MakeCredential),
with the secret-sharing of Part 1 §B.10.3 (RSA, OAEP label "IDENTITY") and §C.6.4 (ECC,
one-pass ECDH + KDFe). Only the TPM holding the EK, with an object of name ``object_name``
loaded, can recover the secret with TPM2_ActivateCredential.

Outputs are TPM wire structures ready for ``TPM2B_ID_OBJECT.unmarshal`` and
``TPM2B_ENCRYPTED_SECRET.unmarshal`` on the agent.
"""

from __future__ import annotations

import hmac as std_hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.kdf.kbkdf import KBKDFHMAC, CounterLocation, Mode

from attest.tpm.constants import ObjectAttributes, TpmAlg, alg_label, hash_for
from attest.tpm.errors import TpmAttributeError
from attest.tpm.public import EccParameters, TpmPublic
from attest.tpm.wire import tpm2b

try:  # cryptography >= 43 keeps CFB under "decrepit"; older releases in primitives
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:  # pragma: no cover - depends on the installed cryptography
    from cryptography.hazmat.primitives.ciphers.modes import CFB  # type: ignore[attr-defined,no-redef,unused-ignore]

_AES_BLOCK = 16


@dataclass(frozen=True)
class Credential:
    """MakeCredential output: TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET, marshaled."""

    credential_blob: bytes
    encrypted_secret: bytes


def kdfa(
    hash_alg: int, key: bytes, label: bytes, context_u: bytes, context_v: bytes, bits: int
) -> bytes:
    """Part 1 §11.4.10.2 KDFa: SP 800-108 counter-mode HMAC, label NUL-terminated once."""
    if bits % 8:
        raise ValueError("KDFa output must be whole bytes here")
    kdf = KBKDFHMAC(
        algorithm=hash_for(hash_alg),
        mode=Mode.CounterMode,
        length=bits // 8,
        rlen=4,
        llen=4,
        location=CounterLocation.BeforeFixed,
        label=label,
        context=context_u + context_v,
        fixed=None,
    )
    return kdf.derive(key)


def kdfe(hash_alg: int, z: bytes, label: bytes, party_u: bytes, party_v: bytes, bits: int) -> bytes:
    """Part 1 §11.4.10.3 KDFe: SP 800-56A concatenation KDF, ``label || 0 || U || V``."""
    kdf = ConcatKDFHash(
        algorithm=hash_for(hash_alg), length=bits // 8, otherinfo=label + b"\0" + party_u + party_v
    )
    return kdf.derive(z)


def _seed_for_rsa(ek: TpmPublic, key: rsa.RSAPublicKey, seed: bytes) -> bytes:
    algorithm = hash_for(ek.name_alg)
    return key.encrypt(
        seed,
        padding.OAEP(mgf=padding.MGF1(algorithm), algorithm=algorithm, label=b"IDENTITY\0"),
    )


def _seed_for_ecc(ek: TpmPublic, key: ec.EllipticCurvePublicKey) -> tuple[bytes, bytes]:
    """One-pass ECDH (C(1, 1, ECC CDH)) with an ephemeral key; returns (seed, TPMS_ECC_POINT)."""
    params = ek.parameters
    assert isinstance(params, EccParameters)
    size = (key.curve.key_size + 7) // 8
    ephemeral = ec.generate_private_key(key.curve)
    z = ephemeral.exchange(ec.ECDH(), key)
    numbers = ephemeral.public_key().public_numbers()
    eph_x = numbers.x.to_bytes(size, "big")
    eph_y = numbers.y.to_bytes(size, "big")
    digest_bits = hash_for(ek.name_alg).digest_size * 8
    seed = kdfe(ek.name_alg, z, b"IDENTITY", eph_x, params.x, digest_bits)
    return seed, tpm2b(eph_x) + tpm2b(eph_y)


def _cfb_encrypt(key: bytes, plaintext: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), CFB(b"\0" * _AES_BLOCK)).encryptor()
    return encryptor.update(plaintext) + encryptor.finalize()


def make_credential(ek: TpmPublic, object_name: bytes, secret: bytes) -> Credential:
    """Encrypt ``secret`` to ``ek``; only ActivateCredential with ``object_name`` opens it."""
    if not ek.has(ObjectAttributes.RESTRICTED | ObjectAttributes.DECRYPT):
        raise TpmAttributeError("the EK must be a restricted decryption (storage) key")
    symmetric = ek.parameters.symmetric
    if symmetric.algorithm != TpmAlg.AES or symmetric.mode != TpmAlg.CFB:
        raise TpmAttributeError(
            f"EK symmetric scheme {alg_label(symmetric.algorithm)}/{alg_label(symmetric.mode)} "
            "is not supported; only AES-CFB"
        )
    digest_size = hash_for(ek.name_alg).digest_size
    if not 0 < len(secret) <= digest_size:
        raise ValueError(f"the credential must be 1..{digest_size} bytes for this EK")

    # (1) seed and its encryption to the EK (Part 1 §24.4, §B.10.3 / §C.6.4)
    public_key = ek.public_key()
    if isinstance(public_key, rsa.RSAPublicKey):
        seed = os.urandom(digest_size)
        encrypted_seed = _seed_for_rsa(ek, public_key, seed)
    else:
        seed, encrypted_seed = _seed_for_ecc(ek, public_key)

    # (2) symmetric protection: symKey = KDFa(nameAlg, seed, "STORAGE", name, ∅, keyBits)
    sym_key = kdfa(ek.name_alg, seed, b"STORAGE", object_name, b"", symmetric.key_bits)
    enc_identity = _cfb_encrypt(sym_key, tpm2b(secret))

    # (3) integrity: HMAC(KDFa(nameAlg, seed, "INTEGRITY", ∅, ∅, digest bits), encIdentity || name)
    hmac_key = kdfa(ek.name_alg, seed, b"INTEGRITY", b"", b"", digest_size * 8)
    hash_name = hash_for(ek.name_alg).name
    outer_hmac = std_hmac.new(hmac_key, enc_identity + object_name, hash_name).digest()

    return Credential(
        credential_blob=tpm2b(tpm2b(outer_hmac) + enc_identity),
        encrypted_secret=tpm2b(encrypted_seed),
    )


__all__ = ["Credential", "kdfa", "kdfe", "make_credential"]
