"""The ``secure-enclave`` provider: a P-256 key in the macOS Secure Enclave via a signed helper.

Python cannot reach CryptoKit, so a small Swift helper (packaging/macos/envattest-se-helper/)
does the three operations. Outside MDM attestation there is no proof a verifier can check, so
the class is ``hardware-unverified`` and ``attestation()`` is a ``none`` statement (the key
signs the enrollment challenge).

Helper protocol: one JSON object per line on stdin, one JSON object per line on stdout, one
request per process run. Binary values are unpadded base64url.

=========================================  =============================================
request                                    success answer
=========================================  =============================================
``{"op": "create"}``                       ``{"ok": true, "key": K, "public": P}``
``{"op": "public", "key": K}``             ``{"ok": true, "public": P}``
``{"op": "sign", "key": K, "data": D}``    ``{"ok": true, "signature": S}``
=========================================  =============================================

``K`` is CryptoKit's ``dataRepresentation`` (an opaque blob only this Mac's Secure Enclave can
use; stored owner-only by the agent), ``P`` the X9.63 uncompressed point (65 bytes), ``S`` the
DER ECDSA signature over SHA-256(``D``). Failure: ``{"ok": false, "error": CODE, "message": M}``
with CODE one of ``unavailable``, ``invalid_key``, ``auth_failed``, ``bad_request``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ec

from attest.b64 import b64url_decode, b64url_encode
from attest.errors import FormatError, KeyProviderError
from attest.jose import der_to_raw
from attest.jwk import public_jwk
from attest.keys import KeyClass, ProviderName
from attest.privatefile import write_private_atomic

HELPER_NAME = "envattest-se-helper"
_FILE_VERSION = 1
_TIMEOUT_SECONDS = 30.0
_ERROR_HINTS = {
    "unavailable": "this Mac has no Secure Enclave (or the helper cannot reach it); "
    "use '--key software'",
    "invalid_key": "the Secure Enclave cannot use the stored key (another Mac, or the key was "
    "reset); run 'envattest forget' and 'envattest init'",
    "auth_failed": "the Secure Enclave refused to use the key; unlock the Mac and retry",
    "bad_request": "the helper does not understand this agent; reinstall envattest",
}


class HelperTransport(Protocol):
    """Sends one request to the helper and returns its decoded answer."""

    def call(self, request: dict[str, str]) -> dict[str, Any]:
        """One round trip; raises KeyProviderError if the helper cannot be run."""
        ...


@dataclass(frozen=True)
class SubprocessHelper:
    """Runs the helper binary once per request over stdin/stdout."""

    executable: Path
    timeout: float = _TIMEOUT_SECONDS

    @classmethod
    def find(cls, explicit: Path | None = None) -> SubprocessHelper:
        """The helper next to the agent binary or on PATH."""
        if explicit is not None:
            return cls(explicit)
        found = shutil.which(HELPER_NAME)
        if found is None:
            raise KeyProviderError(
                f"{HELPER_NAME} not found on PATH; install the signed macOS package of "
                "envattest, or use '--key software'"
            )
        return cls(Path(found))

    def call(self, request: dict[str, str]) -> dict[str, Any]:
        try:
            result = subprocess.run(
                [str(self.executable)],
                input=json.dumps(request) + "\n",
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise KeyProviderError(f"cannot run {self.executable}: {exc}") from exc
        line = result.stdout.strip().splitlines()[-1:] or [""]
        return decode_answer(line[0], stderr=result.stderr)


def decode_answer(line: str, *, stderr: str = "") -> dict[str, Any]:
    """Parse one answer line; helper-reported failures become KeyProviderError with a fix."""
    try:
        answer = json.loads(line)
    except json.JSONDecodeError:
        detail = stderr.strip()[-200:] or "no output"
        raise KeyProviderError(
            f"the Secure Enclave helper gave no JSON answer ({detail}); reinstall envattest"
        ) from None
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        raise KeyProviderError("the Secure Enclave helper answered without an 'ok' member")
    if not answer["ok"]:
        code = answer.get("error")
        hint = _ERROR_HINTS.get(code if isinstance(code, str) else "", "see the helper message")
        raise KeyProviderError(
            f"Secure Enclave error {code!r}: {answer.get('message', '')}; {hint}"
        )
    return answer


def _member(answer: dict[str, Any], name: str) -> bytes:
    value = answer.get(name)
    if not isinstance(value, str):
        raise KeyProviderError(f"the Secure Enclave helper answer lacks {name!r}")
    try:
        return b64url_decode(value)
    except FormatError:
        raise KeyProviderError(f"the helper's {name!r} is not base64url") from None


def _point(x963: bytes) -> ec.EllipticCurvePublicKey:
    if len(x963) != 65 or x963[0] != 0x04:
        raise KeyProviderError("the helper's public key is not an uncompressed P-256 point")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), x963)
    except ValueError as exc:
        raise KeyProviderError("the helper's public key is not on P-256") from exc


class SecureEnclaveKey:
    """A Secure Enclave key whose opaque handle lives in an owner-only file."""

    name = ProviderName.SECURE_ENCLAVE
    claimed_class = KeyClass.HARDWARE_UNVERIFIED

    def __init__(
        self, transport: HelperTransport, key_blob: bytes, public: ec.EllipticCurvePublicKey
    ) -> None:
        self._transport = transport
        self._key_blob = key_blob
        self._public = public

    @classmethod
    def create(cls, path: Path, *, transport: HelperTransport | None = None) -> SecureEnclaveKey:
        """Create a key in the Secure Enclave and store its handle at ``path``."""
        transport = transport or SubprocessHelper.find()
        answer = transport.call({"op": "create"})
        blob, public = _member(answer, "key"), _point(_member(answer, "public"))
        document = {"version": _FILE_VERSION, "key": b64url_encode(blob)}
        write_private_atomic(path, json.dumps(document).encode())
        return cls(transport, blob, public)

    @classmethod
    def load(cls, path: Path, *, transport: HelperTransport | None = None) -> SecureEnclaveKey:
        """Load the handle at ``path`` and ask the Secure Enclave for its public key."""
        try:
            document = json.loads(path.read_bytes())
            if document.get("version") != _FILE_VERSION:
                raise ValueError("unsupported version")
            blob = b64url_decode(document["key"])
        except FileNotFoundError:
            raise KeyProviderError(
                f"no device key at {path}: run 'envattest init' to enroll"
            ) from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError, FormatError) as exc:
            raise KeyProviderError(
                f"Secure Enclave key file {path} is unreadable ({exc}); run 'envattest forget' "
                "and 'envattest init'"
            ) from exc
        transport = transport or SubprocessHelper.find()
        answer = transport.call({"op": "public", "key": b64url_encode(blob)})
        return cls(transport, blob, _point(_member(answer, "public")))

    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK."""
        return public_jwk(self._public)

    def sign(self, data: bytes) -> bytes:
        """ES256 by the Secure Enclave (one helper call), DER converted to raw ``r||s``."""
        answer = self._transport.call(
            {"op": "sign", "key": b64url_encode(self._key_blob), "data": b64url_encode(data)}
        )
        try:
            return der_to_raw(_member(answer, "signature"))
        except ValueError as exc:
            raise KeyProviderError("the helper's signature is not DER ECDSA") from exc

    def attestation(self, nonce: bytes) -> dict[str, Any]:
        """No verifiable hardware proof (self-reported); the key signs the challenge."""
        from attest.keyattest.none import build_none_statement

        return build_none_statement(nonce=nonce, jwk=self.public_jwk(), signer=self.sign)


__all__ = ["HELPER_NAME", "HelperTransport", "SecureEnclaveKey", "SubprocessHelper"]
