"""Storage for the verifier: a ``Store`` protocol and its records.

``SqlStore`` (``server.store.sql``) implements it on SQLite (default) and PostgreSQL. Every
method that must be atomic says so; single use of nonces and enrollment tokens is enforced by
the database, so it holds across replicas.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class DuplicateKeyError(Exception):
    """A device with this key is already enrolled."""


class NonceOutcome(StrEnum):
    """Result of trying to spend a nonce."""

    CONSUMED = "consumed"
    UNKNOWN = "unknown"
    WRONG_DEVICE = "wrong-device"
    EXPIRED = "expired"
    ALREADY_USED = "already-used"


@dataclass(frozen=True)
class DeviceRecord:
    """An enrolled device."""

    device_id: str
    public_jwk: dict[str, str]
    jkt: str
    key_class: str
    enrolled_at: int
    revoked_at: int | None = None
    erased_at: int | None = None

    @property
    def active(self) -> bool:
        """Neither revoked nor erased."""
        return self.revoked_at is None and self.erased_at is None


@dataclass(frozen=True)
class PendingEnrollment:
    """A TPM enrollment waiting for credential activation."""

    enrollment_id: str
    public_jwk: dict[str, str]
    secret_sha256: str
    details: dict[str, Any]
    expires_at: int


@dataclass(frozen=True)
class AuditEvent:
    """One audit entry to append; the store adds sequence, time and chain hashes."""

    event: str
    device_id: str | None
    decision: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class AuditRecord:
    """One stored audit entry."""

    seq: int
    at: int
    event: str
    device_id: str | None
    decision: str | None
    data: dict[str, Any] | None
    data_sha256: str
    prev_hash: str
    hash: str


class Store(Protocol):
    """What the verifier needs from its database."""

    def add_enrollment_token(self, token_sha256: str, *, uses: int, expires_at: int) -> None:
        """Store a new enrollment token (by hash only)."""
        ...

    def spend_enrollment_token(self, token_sha256: str, *, now: int) -> bool:
        """Atomically use up one use of a valid token; False if unknown, used up or expired."""
        ...

    def enrollment_token_valid(self, token_sha256: str, *, now: int) -> bool:
        """True if the token exists, has uses left and is unexpired (nothing is spent)."""
        ...

    def add_device(self, device: DeviceRecord, audit: AuditEvent) -> None:
        """Insert a device and its enrollment audit record in one transaction; raise
        DuplicateKeyError if the key is already enrolled."""
        ...

    def get_device(self, device_id: str) -> DeviceRecord | None:
        """The device, or None."""
        ...

    def spend_nonce(
        self, nonce: str, *, binding: str, expires_at: int, now: int, audit: AuditEvent | None
    ) -> tuple[NonceOutcome, AuditRecord | None]:
        """Record a checked nonce as spent, with ``audit`` in the same durable commit: exactly
        one caller ever gets CONSUMED, the others ALREADY_USED."""
        ...

    async def spend_nonce_async(
        self, nonce: str, *, binding: str, expires_at: int, now: int, audit: AuditEvent | None
    ) -> tuple[NonceOutcome, AuditRecord | None]:
        """``spend_nonce`` awaited on the running event loop, with the same guarantees."""
        ...

    def purge_nonces(self, *, before: int) -> int:
        """Delete spent nonces that expired before ``before``; return how many."""
        ...

    def add_pending_enrollment(self, pending: PendingEnrollment) -> None:
        """Store a TPM enrollment awaiting activation."""
        ...

    def take_pending_enrollment(self, enrollment_id: str, *, now: int) -> PendingEnrollment | None:
        """Atomically remove and return an unexpired pending enrollment."""
        ...

    def append_audit(self, event: AuditEvent) -> AuditRecord:
        """Append to the hash chain and commit durably before returning."""
        ...

    def audit_records(
        self,
        *,
        after_seq: int = 0,
        limit: int | None = None,
        device_id: str | None = None,
        since: int | None = None,
        decision: str | None = None,
    ) -> list[AuditRecord]:
        """Audit records in sequence order."""
        ...

    def ping(self) -> None:
        """Raise if the database is unreachable."""
        ...
