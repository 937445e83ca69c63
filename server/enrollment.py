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
from datetime import UTC, datetime
from typing import Any

from attest.b64 import b64url_decode, b64url_encode
from attest.errors import FormatError, KeyAttestationError
from attest.jwk import jwk_thumbprint, load_public_jwk, public_jwk
from attest.keyattest import TrustStore, make_activation_challenge, verify_tpm2_key_attestation
from attest.keys import KeyClass
from server.errors import BadRequestError, EnrollmentRejectedError
from server.store import AuditEvent, DeviceRecord, NonceOutcome, PendingEnrollment
from server.store.sql import DuplicateKeyError, SqlStore

NONCE_BYTES = 32


def token_sha256(token: str) -> str:
    """Enrollment tokens are stored and looked up by hash only."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_enrollment_token() -> str:
    """A fresh enrollment token (shown once to the admin)."""
    return "et_" + secrets.token_urlsafe(24)


def new_device_id() -> str:
    """A fresh, unguessable device id."""
    return "dev_" + secrets.token_urlsafe(18)


def enrollment_binding(enrollment_token: str) -> str:
    """What an enrollment nonce is bound to: the token it will be spent with."""
    return f"enroll:{token_sha256(enrollment_token)}"


@dataclass(frozen=True)
class PendingTpm2:
    """The credential-activation challenge for a TPM enrollment."""

    enrollment_id: str
    credential_blob: str
    encrypted_secret: str
    expires_in: int


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

    def enrollment_nonce(self, enrollment_token: str, *, ttl_s: int) -> str:
        """A fresh nonce for TPM2_Certify's qualifying data, bound to the enrollment token."""
        nonce = b64url_encode(secrets.token_bytes(NONCE_BYTES))
        self.store.add_nonce(
            nonce,
            binding=enrollment_binding(enrollment_token),
            expires_at=int(self._clock()) + ttl_s,
        )
        return nonce

    def _refuse(self, reason: str, detail: str) -> EnrollmentRejectedError:
        self.store.append_audit(
            AuditEvent("enroll.rejected", None, "reject", {"reason": detail, "format": "tpm2"})
        )
        return EnrollmentRejectedError(reason, audit_detail=detail)

    def begin_tpm2(
        self,
        *,
        enrollment_token: str,
        jwk: Any,
        statement: dict[str, Any],
        nonce: str | None,
        trust_store: TrustStore | None,
        ttl_s: int,
    ) -> PendingTpm2:
        """Format ``tpm2``: verify the key-attestation proof, then challenge the EK."""
        now = int(self._clock())
        # (1) this verifier must have an EK trust store (DESIGN: Keys)
        if trust_store is None:
            raise BadRequestError(
                "this verifier does not accept TPM enrollment (no EK trust store configured); "
                "enroll with --key software or ask the administrator to set --tpm-roots"
            )
        # (2) the nonce was issued for this enrollment token and is spent now (single use)
        if nonce is None:
            raise BadRequestError("tpm2 enrollment needs the nonce from /v1/enroll/challenge")
        outcome = self.store.consume_nonce(
            nonce, binding=enrollment_binding(enrollment_token), now=now
        )
        if outcome is not NonceOutcome.CONSUMED:
            raise self._refuse(
                "the enrollment nonce is unknown, used or expired; run 'envattest init' again",
                f"enrollment nonce {outcome.value}",
            )
        # (3) EK chain, EK binding, AK and certify checks, key match (attest.keyattest.tpm2)
        try:
            verified = verify_tpm2_key_attestation(
                statement,
                expected_jwk=jwk,
                expected_nonce=b64url_decode(nonce),
                trust_store=trust_store,
                now=datetime.fromtimestamp(now, UTC),
            )
        except (KeyAttestationError, FormatError) as exc:
            raise self._refuse(
                "the TPM key attestation was not accepted; run 'envattest doctor', or enroll "
                "with --key software if this machine has no usable TPM",
                f"tpm2 proof: {exc}",
            ) from exc
        # (4) the enrollment token is spent only for a proof that holds
        self.spend_token(enrollment_token)
        # (5) MakeCredential to the EK, bound to the AK name: only that TPM can answer
        challenge = make_activation_challenge(verified)
        enrollment_id = "enr_" + secrets.token_urlsafe(18)
        self.store.add_pending_enrollment(
            PendingEnrollment(
                enrollment_id=enrollment_id,
                public_jwk=verified.public_jwk,
                secret_sha256=hashlib.sha256(challenge.secret).hexdigest(),
                details={
                    "ek_certificate_sha256": verified.ek_certificate_sha256,
                    "ek_public_sha256": verified.ek_public_sha256,
                    "ak_name": verified.ak_name.hex(),
                    "key_name": verified.key_name.hex(),
                },
                expires_at=now + ttl_s,
            )
        )
        return PendingTpm2(
            enrollment_id=enrollment_id,
            credential_blob=b64url_encode(challenge.credential_blob),
            encrypted_secret=b64url_encode(challenge.encrypted_secret),
            expires_in=ttl_s,
        )

    def activate_tpm2(self, *, enrollment_id: str, secret: str) -> EnrolledDevice:
        """(6) the activation secret proves the AK lives with the EK: only now is it ``tpm2``."""
        pending = self.store.take_pending_enrollment(enrollment_id, now=int(self._clock()))
        if pending is None:
            raise self._refuse(
                "this enrollment is unknown, expired or already answered; run 'envattest init' "
                "again with a new enrollment token",
                f"activation of unknown or expired enrollment {enrollment_id}",
            )
        try:
            presented = b64url_decode(secret)
        except FormatError:
            presented = b""
        if not secrets_match(pending.secret_sha256, presented):
            raise self._refuse(
                "credential activation failed: the key is not in the TPM whose EK was presented",
                f"wrong activation secret for {enrollment_id}",
            )
        return self.add_device(
            pending.public_jwk, KeyClass.TPM2, proof="tpm2", details=pending.details
        )

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

    def add_device(
        self,
        jwk: dict[str, str],
        key_class: KeyClass,
        *,
        proof: str,
        details: dict[str, Any] | None = None,
    ) -> EnrolledDevice:
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
            {"key_class": key_class.value, "jkt": jkt, "proof": proof, **(details or {})},
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
