"""Enrollment: an enrollment token plus a device public key becomes an enrolled device.

The key class is decided here, from the proof, never from the client's claim. Key
attestation is verified by ``attest.keyattest`` only (one dispatch on ``format``); this module
orders the steps, spends the token, and records the outcome:

- ``none``: the key signs the enrollment challenge (proof of possession) -> ``software``;
- ``tpm2``: the TPM proof, then credential activation -> ``tpm2``.

Every refusal is audited as ``enroll.rejected`` with the ``step`` that refused.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from attest.b64 import b64url_decode, b64url_encode
from attest.errors import AttestError, FormatError, KeyAttestationError
from attest.jwk import jwk_thumbprint, load_public_jwk
from attest.keyattest import (
    AttestationFormat,
    TrustStore,
    VerifiedTpm2Key,
    activation_secret_sha256,
    attestation_format,
    load_trust_store,
    make_activation_challenge,
    verify_activation_secret,
    verify_key_attestation,
)
from attest.keys import KeyClass
from server.errors import BadRequestError, ConfigError, EnrollmentRejectedError, ProblemError
from server.nonces import ChallengeNonces, IssuedNonce
from server.store import (
    AuditEvent,
    DeviceRecord,
    DuplicateKeyError,
    NonceOutcome,
    PendingEnrollment,
    Store,
)

_UNUSABLE_ENROLLMENT = (
    "the enrollment token is unknown, used up or expired; ask your administrator for a new one "
    "(envattest-server enroll-token create)"
)
_PROOF_REFUSED = {
    AttestationFormat.NONE: "the key's proof of possession was not accepted; update the agent "
    "and run 'envattest init' again",
    AttestationFormat.TPM2: "the TPM key attestation was not accepted; run 'envattest doctor', "
    "or enroll with --key software if this machine has no usable TPM",
}


def load_tpm_trust_store(directory: Path | None) -> TrustStore | None:
    """The EK trust store named by ``tpm_roots`` (``--tpm-roots``), or None if not configured."""
    if directory is None:
        return None
    try:
        return load_trust_store(directory)
    except AttestError as exc:
        raise ConfigError(f"--tpm-roots {directory}: {exc}") from exc


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

    def __init__(
        self,
        store: Store,
        nonces: ChallengeNonces,
        *,
        trust_store: TrustStore | None,
        ttl_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.nonces = nonces
        self.trust_store = trust_store
        self.ttl_s = ttl_s
        self._clock = clock

    def _refuse(self, error: ProblemError, step: str, **data: str) -> ProblemError:
        self.store.append_audit(
            AuditEvent(
                "enroll.rejected",
                None,
                "reject",
                {"step": step, "reason": error.audit_detail, "problem": error.slug, **data},
            )
        )
        return error

    def _check_token(self, enrollment_token: str, now: int) -> None:
        if not self.store.enrollment_token_valid(token_sha256(enrollment_token), now=now):
            raise self._refuse(
                EnrollmentRejectedError(_UNUSABLE_ENROLLMENT, audit_detail="bad enrollment token"),
                "token",
            )

    def challenge(self, enrollment_token: str) -> IssuedNonce:
        """(1) only for a valid token (nothing is spent or stored); the nonce is bound to it."""
        now = int(self._clock())
        self._check_token(enrollment_token, now)
        return self.nonces.issue(enrollment_binding(enrollment_token), now=now, ttl_s=self.ttl_s)

    def enroll(
        self,
        *,
        enrollment_token: str,
        jwk: Mapping[str, str],
        statement: Mapping[str, Any],
        nonce: str | None,
    ) -> EnrolledDevice | PendingTpm2:
        """Run the enrollment steps in order; raise a ProblemError on the first refusal."""
        now = int(self._clock())
        # (1) the enrollment token is valid (it is spent in step 5, once the proof holds)
        self._check_token(enrollment_token, now)
        # (2) the key is a public P-256 JWK and the format is one this verifier knows
        try:
            load_public_jwk(jwk)
            fmt = attestation_format(statement)
        except (FormatError, KeyAttestationError) as exc:
            raise self._refuse(
                BadRequestError(f"public_jwk or key_attestation: {exc}"), "key"
            ) from exc
        if fmt is AttestationFormat.TPM2 and self.trust_store is None:
            raise self._refuse(
                BadRequestError(
                    "this verifier does not accept TPM enrollment (no EK trust store "
                    "configured); enroll with --key software or ask the administrator to set "
                    "--tpm-roots"
                ),
                "format",
            )
        # (3) the challenge was issued for this token, is fresh, and is spent now (single use)
        binding = enrollment_binding(enrollment_token)
        outcome = (
            NonceOutcome.UNKNOWN
            if nonce is None
            else self.nonces.spend(nonce, binding=binding, now=now)[0]
        )
        if nonce is None or outcome is not NonceOutcome.CONSUMED:
            raise self._refuse(
                EnrollmentRejectedError(
                    "the enrollment challenge is missing, used or expired; run 'envattest init' "
                    "again",
                    audit_detail=f"enrollment nonce {outcome.value}",
                ),
                "nonce",
                format=fmt.value,
            )
        # (4) key attestation by the library: proof of possession (none) or TPM proof (tpm2)
        try:
            verified = verify_key_attestation(
                statement,
                expected_jwk=jwk,
                expected_nonce=b64url_decode(nonce),
                trust_store=self.trust_store,
                now=datetime.fromtimestamp(now, UTC),
            )
        except (KeyAttestationError, FormatError) as exc:
            refused = EnrollmentRejectedError(_PROOF_REFUSED[fmt], audit_detail=f"{fmt}: {exc}")
            raise self._refuse(refused, "proof", format=fmt.value) from exc
        # (5) the enrollment token is spent only for a proof that holds (atomic, single use)
        if not self.store.spend_enrollment_token(token_sha256(enrollment_token), now=now):
            raise self._refuse(
                EnrollmentRejectedError(
                    _UNUSABLE_ENROLLMENT, audit_detail="token used up meanwhile"
                ),
                "token",
            )
        # (6) the key class comes from what was verified, never from the client
        if isinstance(verified, VerifiedTpm2Key):
            return self._begin_activation(verified, now)
        return self.add_device(verified.public_jwk, verified.key_class, proof=fmt.value)

    def _begin_activation(self, verified: VerifiedTpm2Key, now: int) -> PendingTpm2:
        """MakeCredential to the EK, bound to the AK name: only that TPM can answer."""
        challenge = make_activation_challenge(verified)
        enrollment_id = "enr_" + secrets.token_urlsafe(18)
        self.store.add_pending_enrollment(
            PendingEnrollment(
                enrollment_id=enrollment_id,
                public_jwk=verified.public_jwk,
                secret_sha256=activation_secret_sha256(challenge.secret),
                details={
                    "ek_certificate_sha256": verified.ek_certificate_sha256,
                    "ek_public_sha256": verified.ek_public_sha256,
                    "ak_name": verified.ak_name.hex(),
                    "key_name": verified.key_name.hex(),
                },
                expires_at=now + self.ttl_s,
            )
        )
        return PendingTpm2(
            enrollment_id=enrollment_id,
            credential_blob=b64url_encode(challenge.credential_blob),
            encrypted_secret=b64url_encode(challenge.encrypted_secret),
            expires_in=self.ttl_s,
        )

    def activate_tpm2(self, *, enrollment_id: str, secret: str) -> EnrolledDevice:
        """(7) the activation secret proves the AK lives with the EK: only now is it ``tpm2``."""
        pending = self.store.take_pending_enrollment(enrollment_id, now=int(self._clock()))
        if pending is None:
            raise self._refuse(
                EnrollmentRejectedError(
                    "this enrollment is unknown, expired or already answered; run 'envattest "
                    "init' again with a new enrollment token",
                    audit_detail=f"activation of unknown or expired enrollment {enrollment_id}",
                ),
                "activation",
                format="tpm2",
            )
        try:
            verify_activation_secret(b64url_decode(secret), expected_sha256=pending.secret_sha256)
        except (KeyAttestationError, FormatError) as exc:
            raise self._refuse(
                EnrollmentRejectedError(
                    "credential activation failed: the key is not in the TPM whose EK was "
                    "presented",
                    audit_detail=f"wrong activation secret for {enrollment_id}",
                ),
                "activation",
                format="tpm2",
            ) from exc
        return self.add_device(
            pending.public_jwk, KeyClass.TPM2, proof="tpm2", details=pending.details
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
            raise self._refuse(
                EnrollmentRejectedError(
                    "this device key is already enrolled; run 'envattest forget' and enroll again",
                    audit_detail=f"key {jkt} already enrolled",
                ),
                "duplicate",
            ) from None
        return EnrolledDevice(device.device_id, key_class)
