"""Enrollment: an enrollment token plus a device public key becomes an enrolled device.

The key class is decided here, from the proof, never from the client's claim:
format ``none`` -> ``software``; format ``tpm2`` -> ``tpm2`` only after the TPM proof and
credential activation both succeed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from attest.errors import FormatError
from attest.jwk import jwk_thumbprint, load_public_jwk, public_jwk
from attest.keys import KeyClass
from server.errors import BadRequestError, EnrollmentRejectedError
from server.store import AuditEvent, DeviceRecord
from server.store.sql import DuplicateKeyError, SqlStore


def token_sha256(token: str) -> str:
    """Enrollment tokens are stored and looked up by hash only."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_enrollment_token() -> str:
    """A fresh enrollment token (shown once to the admin)."""
    return "et_" + secrets.token_urlsafe(24)


def new_device_id() -> str:
    """A fresh, unguessable device id."""
    return "dev_" + secrets.token_urlsafe(18)


@dataclass(frozen=True)
class EnrolledDevice:
    """The answer to a completed enrollment."""

    device_id: str
    key_class: KeyClass


class Enrollment:
    """Enrolls devices into a store."""

    def __init__(self, store: SqlStore, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    def enroll_without_proof(
        self, *, enrollment_token: str, jwk: Any, key_attestation: dict[str, Any]
    ) -> EnrolledDevice:
        """Format ``none``: (1) parse the key, (2) spend the token, (3) store as software."""
        if key_attestation.get("format") != "none":
            raise BadRequestError("key_attestation.format must be 'none' or 'tpm2'")
        # (1) the key must be a valid public P-256 JWK (DESIGN: Keys)
        try:
            key = load_public_jwk(jwk)
        except FormatError as exc:
            raise BadRequestError(f"public_jwk: {exc}") from exc
        # (2) the enrollment token is single use and time bound (DESIGN: enroll)
        self.spend_token(enrollment_token)
        # (3) no proof: the verifier records the key as software, whatever the client says
        return self.add_device(public_jwk(key), KeyClass.SOFTWARE, proof="none")

    def spend_token(self, enrollment_token: str) -> None:
        """Spend one use of an enrollment token or raise EnrollmentRejectedError."""
        now = int(self._clock())
        if not self.store.spend_enrollment_token(token_sha256(enrollment_token), now=now):
            self.store.append_audit(
                AuditEvent("enroll.rejected", None, "reject", {"reason": "bad enrollment token"})
            )
            raise EnrollmentRejectedError(
                "the enrollment token is unknown, used up or expired; ask your administrator "
                "for a new one (envattest-server enroll-token create)"
            )

    def add_device(self, jwk: dict[str, str], key_class: KeyClass, *, proof: str) -> EnrolledDevice:
        """Store a device whose key class the verifier has decided."""
        jkt = jwk_thumbprint(load_public_jwk(jwk))
        device = DeviceRecord(
            device_id=new_device_id(),
            public_jwk=jwk,
            jkt=jkt,
            key_class=key_class.value,
            enrolled_at=int(self._clock()),
        )
        audit = AuditEvent(
            "enroll",
            device.device_id,
            "allow",
            {"key_class": key_class.value, "jkt": jkt, "proof": proof},
        )
        try:
            self.store.add_device(device, audit)
        except DuplicateKeyError:
            raise EnrollmentRejectedError(
                "this device key is already enrolled; run 'envattest forget' and enroll again"
            ) from None
        return EnrolledDevice(device.device_id, key_class)


def secrets_match(expected_sha256: str, secret: bytes) -> bool:
    """Constant-time comparison of an activation secret with its stored hash."""
    return hmac.compare_digest(expected_sha256, hashlib.sha256(secret).hexdigest())
