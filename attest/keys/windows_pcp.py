"""The ``windows-pcp`` provider: a P-256 TPM key via CNG's Microsoft Platform Crypto Provider.

The key is non-exportable and TPM-backed, but without TPM key attestation the verifier cannot
check that, so the class is ``hardware-unverified`` and ``attestation()`` is a ``none``
statement (the key signs the enrollment challenge).

The OS calls sit behind ``PcpBackend`` (``NCryptOpenStorageProvider``, ``NCryptOpenKey``,
``NCryptCreatePersistedKey`` + ``NCryptFinalizeKey``, ``NCryptExportKey(BCRYPT_ECCPUBLIC_BLOB)``,
``NCryptSignHash``); ``CngPcpBackend`` implements it with ctypes on Windows, and everything above
it (blob parsing, signature shape, error mapping) is tested with an in-memory fake.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import struct
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ec

from attest.errors import KeyProviderError
from attest.jwk import public_jwk
from attest.keys import KeyClass, ProviderName

PROVIDER_NAME = "Microsoft Platform Crypto Provider"
DEFAULT_KEY_NAME = "envattest-device-key"
_ECDSA_P256 = "ECDSA_P256"
_ECCPUBLIC_BLOB = "ECCPUBLICBLOB"
_ECDSA_PUBLIC_P256_MAGIC = 0x31534345  # "ECS1", BCRYPT_ECDSA_PUBLIC_P256_MAGIC
_COORD = 32
_OVERWRITE_KEY_FLAG = 0x00000080  # NCRYPT_OVERWRITE_KEY_FLAG

# SECURITY_STATUS values worth a specific explanation (winerror.h / tbs.h / TPM 2.0 RCs).
NTE_BAD_KEYSET = 0x80090016
NTE_EXISTS = 0x8009000F
NTE_NOT_SUPPORTED = 0x80090029
NTE_DEVICE_NOT_READY = 0x80090030
NTE_PROV_DLL_NOT_FOUND = 0x8009001E
TBS_E_SERVICE_NOT_RUNNING = 0x80284008
TBS_E_TPM_NOT_FOUND = 0x8028400F
TPM_20_E_LOCKOUT = 0x80280921
TPM_E_PCP_AUTHENTICATION_FAILED = 0x80290403


class PcpError(Exception):
    """A CNG call failed with ``status`` (an unsigned SECURITY_STATUS)."""

    def __init__(self, call: str, status: int) -> None:
        super().__init__(f"{call} failed with 0x{status:08x}")
        self.call = call
        self.status = status


class PcpBackend(Protocol):
    """The thin OS boundary: handles are opaque; every method raises PcpError on failure."""

    def open_key(self, name: str) -> Any:
        """NCryptOpenKey on the platform provider."""
        ...

    def create_key(self, name: str, *, overwrite: bool) -> Any:
        """NCryptCreatePersistedKey(ECDSA_P256) then NCryptFinalizeKey."""
        ...

    def export_public_blob(self, key: Any) -> bytes:
        """NCryptExportKey(BCRYPT_ECCPUBLIC_BLOB)."""
        ...

    def sign_hash(self, key: Any, digest: bytes) -> bytes:
        """NCryptSignHash over a SHA-256 digest: ECDSA as 64 raw bytes (IEEE P1363)."""
        ...

    def close(self, key: Any) -> None:
        """NCryptFreeObject."""
        ...


def explain_pcp_error(exc: PcpError, *, key_name: str) -> KeyProviderError:
    """A KeyProviderError that tells the user what to do about ``exc``."""
    status = exc.status
    if status == NTE_BAD_KEYSET:
        return KeyProviderError(
            f"no TPM key named {key_name!r} in the Platform Crypto Provider: run "
            "'envattest init' to enroll"
        )
    if status == NTE_EXISTS:
        return KeyProviderError(
            f"a TPM key named {key_name!r} already exists; run 'envattest forget' first"
        )
    if status in (
        NTE_DEVICE_NOT_READY,
        NTE_PROV_DLL_NOT_FOUND,
        NTE_NOT_SUPPORTED,
        TBS_E_TPM_NOT_FOUND,
        TBS_E_SERVICE_NOT_RUNNING,
    ):
        return KeyProviderError(
            "no usable TPM 2.0 (the Platform Crypto Provider is unavailable: "
            f"{exc}); enable the TPM in firmware and check tpm.msc, or use '--key software'"
        )
    if status == TPM_20_E_LOCKOUT:
        return KeyProviderError(
            "the TPM is in dictionary-attack lockout; wait for it to expire or clear it from "
            "tpm.msc ('Reset lockout'), then retry"
        )
    if status == TPM_E_PCP_AUTHENTICATION_FAILED:
        return KeyProviderError("the TPM refused the key's authorization; re-enroll the device")
    return KeyProviderError(f"the Platform Crypto Provider failed: {exc}")


def parse_ecc_public_blob(blob: bytes) -> ec.EllipticCurvePublicKey:
    """BCRYPT_ECCKEY_BLOB: ``dwMagic`` and ``cbKey`` (little-endian ULONGs), then X and Y."""
    if len(blob) < 8:
        raise KeyProviderError("the TPM returned a truncated ECC public blob")
    magic, size = struct.unpack_from("<II", blob)
    if magic != _ECDSA_PUBLIC_P256_MAGIC or size != _COORD or len(blob) != 8 + 2 * _COORD:
        raise KeyProviderError(
            f"the TPM returned an unexpected public blob (magic 0x{magic:08x}, {size}-byte "
            "coordinates); expected an ECDSA P-256 public key"
        )
    x = int.from_bytes(blob[8 : 8 + _COORD], "big")
    y = int.from_bytes(blob[8 + _COORD :], "big")
    try:
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    except ValueError as exc:
        raise KeyProviderError("the TPM returned a point that is not on P-256") from exc


class WindowsPcpKey:
    """A persisted PCP key, opened by name for each use."""

    name = ProviderName.WINDOWS_PCP
    claimed_class = KeyClass.HARDWARE_UNVERIFIED

    def __init__(self, backend: PcpBackend, key_name: str, public: ec.EllipticCurvePublicKey):
        self._backend = backend
        self._key_name = key_name
        self._public = public

    @classmethod
    def create(
        cls,
        key_name: str = DEFAULT_KEY_NAME,
        *,
        backend: PcpBackend | None = None,
        overwrite: bool = False,
    ) -> WindowsPcpKey:
        """Create (and persist) the key in the TPM."""
        backend = backend or CngPcpBackend()
        try:
            handle = backend.create_key(key_name, overwrite=overwrite)
            try:
                public = parse_ecc_public_blob(backend.export_public_blob(handle))
            finally:
                backend.close(handle)
        except PcpError as exc:
            raise explain_pcp_error(exc, key_name=key_name) from exc
        return cls(backend, key_name, public)

    @classmethod
    def load(
        cls, key_name: str = DEFAULT_KEY_NAME, *, backend: PcpBackend | None = None
    ) -> WindowsPcpKey:
        """Open the persisted key and read its public part."""
        backend = backend or CngPcpBackend()
        try:
            handle = backend.open_key(key_name)
            try:
                public = parse_ecc_public_blob(backend.export_public_blob(handle))
            finally:
                backend.close(handle)
        except PcpError as exc:
            raise explain_pcp_error(exc, key_name=key_name) from exc
        return cls(backend, key_name, public)

    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK."""
        return public_jwk(self._public)

    def sign(self, data: bytes) -> bytes:
        """ES256: SHA-256 on the host, one NCryptSignHash, 64 raw bytes."""
        digest = hashlib.sha256(data).digest()
        try:
            handle = self._backend.open_key(self._key_name)
            try:
                signature = self._backend.sign_hash(handle, digest)
            finally:
                self._backend.close(handle)
        except PcpError as exc:
            raise explain_pcp_error(exc, key_name=self._key_name) from exc
        if len(signature) != 2 * _COORD:
            raise KeyProviderError(
                f"the TPM returned a {len(signature)}-byte ECDSA signature; expected 64 (r||s)"
            )
        return signature

    def attestation(self, nonce: bytes) -> dict[str, Any]:
        """No verifiable proof without TPM key attestation; the key signs the challenge."""
        from attest.keyattest.none import build_none_statement

        return build_none_statement(nonce=nonce, jwk=self.public_jwk(), signer=self.sign)


class CngPcpBackend:
    """``PcpBackend`` over ncrypt.dll with ctypes (Windows only)."""

    def __init__(self, provider_name: str = PROVIDER_NAME) -> None:
        if os.name != "nt":
            raise KeyProviderError("the windows-pcp key provider only works on Windows")
        loader: Any = getattr(ctypes, "WinDLL")  # noqa: B009 - absent from ctypes off Windows
        self._ncrypt: Any = loader("ncrypt.dll")
        self._provider: ctypes.c_size_t = ctypes.c_size_t(0)
        self._check(
            "NCryptOpenStorageProvider",
            self._ncrypt.NCryptOpenStorageProvider(
                ctypes.byref(self._provider), ctypes.c_wchar_p(provider_name), 0
            ),
        )

    @staticmethod
    def _check(call: str, status: int) -> None:
        if status != 0:
            raise PcpError(call, status & 0xFFFFFFFF)

    def open_key(self, name: str) -> Any:
        key = ctypes.c_size_t(0)
        self._check(
            "NCryptOpenKey",
            self._ncrypt.NCryptOpenKey(
                self._provider, ctypes.byref(key), ctypes.c_wchar_p(name), 0, 0
            ),
        )
        return key

    def create_key(self, name: str, *, overwrite: bool) -> Any:
        key = ctypes.c_size_t(0)
        flags = _OVERWRITE_KEY_FLAG if overwrite else 0
        self._check(
            "NCryptCreatePersistedKey",
            self._ncrypt.NCryptCreatePersistedKey(
                self._provider,
                ctypes.byref(key),
                ctypes.c_wchar_p(_ECDSA_P256),
                ctypes.c_wchar_p(name),
                0,
                flags,
            ),
        )
        try:
            self._check("NCryptFinalizeKey", self._ncrypt.NCryptFinalizeKey(key, 0))
        except PcpError:
            self.close(key)
            raise
        return key

    def export_public_blob(self, key: Any) -> bytes:
        size = ctypes.c_ulong(0)
        blob_type = ctypes.c_wchar_p(_ECCPUBLIC_BLOB)
        self._check(
            "NCryptExportKey",
            self._ncrypt.NCryptExportKey(key, 0, blob_type, None, None, 0, ctypes.byref(size), 0),
        )
        buffer = (ctypes.c_ubyte * size.value)()
        self._check(
            "NCryptExportKey",
            self._ncrypt.NCryptExportKey(
                key, 0, blob_type, None, buffer, size, ctypes.byref(size), 0
            ),
        )
        return bytes(buffer[: size.value])

    def sign_hash(self, key: Any, digest: bytes) -> bytes:
        size = ctypes.c_ulong(0)
        hash_buffer = (ctypes.c_ubyte * len(digest)).from_buffer_copy(digest)
        self._check(
            "NCryptSignHash",
            self._ncrypt.NCryptSignHash(
                key, None, hash_buffer, len(digest), None, 0, ctypes.byref(size), 0
            ),
        )
        signature = (ctypes.c_ubyte * size.value)()
        self._check(
            "NCryptSignHash",
            self._ncrypt.NCryptSignHash(
                key, None, hash_buffer, len(digest), signature, size, ctypes.byref(size), 0
            ),
        )
        return bytes(signature[: size.value])

    def close(self, key: Any) -> None:
        self._ncrypt.NCryptFreeObject(key)


__all__ = [
    "DEFAULT_KEY_NAME",
    "CngPcpBackend",
    "PcpBackend",
    "PcpError",
    "WindowsPcpKey",
    "explain_pcp_error",
    "parse_ecc_public_blob",
]
