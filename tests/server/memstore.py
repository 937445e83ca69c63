"""An in-memory ``Store`` for in-process tests of the verifier and enrollment."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from server.store import (
    AuditEvent,
    AuditRecord,
    DeviceRecord,
    DuplicateKeyError,
    NonceOutcome,
    PendingEnrollment,
)


@dataclass
class MemoryStore:
    """Implements ``server.store.Store`` with dicts; ``now`` stamps audit records."""

    now: int = 0
    tokens: dict[str, list[int]] = field(default_factory=dict)  # sha -> [uses, expires_at]
    devices: dict[str, DeviceRecord] = field(default_factory=dict)
    spent: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    pending: dict[str, PendingEnrollment] = field(default_factory=dict)
    audit: list[AuditRecord] = field(default_factory=list)

    def add_enrollment_token(self, token_sha256: str, *, uses: int, expires_at: int) -> None:
        self.tokens[token_sha256] = [uses, expires_at]

    def enrollment_token_valid(self, token_sha256: str, *, now: int) -> bool:
        uses, expires_at = self.tokens.get(token_sha256, [0, 0])
        return uses > 0 and expires_at > now

    def spend_enrollment_token(self, token_sha256: str, *, now: int) -> bool:
        if not self.enrollment_token_valid(token_sha256, now=now):
            return False
        self.tokens[token_sha256][0] -= 1
        return True

    def add_device(self, device: DeviceRecord, audit: AuditEvent) -> None:
        if any(d.jkt == device.jkt for d in self.devices.values()):
            raise DuplicateKeyError(device.jkt)
        self.devices[device.device_id] = device
        self.append_audit(audit)

    def get_device(self, device_id: str) -> DeviceRecord | None:
        return self.devices.get(device_id)

    def revoke(self, device_id: str, *, at: int) -> None:
        self.devices[device_id] = replace(self.devices[device_id], revoked_at=at)

    def spend_nonce(
        self, nonce: str, *, binding: str, expires_at: int, now: int, audit: AuditEvent | None
    ) -> tuple[NonceOutcome, AuditRecord | None]:
        if nonce in self.spent:
            return NonceOutcome.ALREADY_USED, None
        self.spent[nonce] = (binding, expires_at, now)
        return NonceOutcome.CONSUMED, None if audit is None else self.append_audit(audit)

    async def spend_nonce_async(
        self, nonce: str, *, binding: str, expires_at: int, now: int, audit: AuditEvent | None
    ) -> tuple[NonceOutcome, AuditRecord | None]:
        return self.spend_nonce(nonce, binding=binding, expires_at=expires_at, now=now, audit=audit)

    def purge_nonces(self, *, before: int) -> int:
        gone = [n for n, (_, expires_at, _) in self.spent.items() if expires_at < before]
        for nonce in gone:
            del self.spent[nonce]
        return len(gone)

    def add_pending_enrollment(self, pending: PendingEnrollment) -> None:
        self.pending[pending.enrollment_id] = pending

    def take_pending_enrollment(self, enrollment_id: str, *, now: int) -> PendingEnrollment | None:
        pending = self.pending.pop(enrollment_id, None)
        return pending if pending is not None and pending.expires_at > now else None

    def append_audit(self, event: AuditEvent) -> AuditRecord:
        record = AuditRecord(
            seq=len(self.audit) + 1,
            at=self.now,
            event=event.event,
            device_id=event.device_id,
            decision=event.decision,
            data=event.data,
            data_sha256="",
            prev_hash="",
            hash="",
        )
        self.audit.append(record)
        return record

    def audit_records(
        self,
        *,
        after_seq: int = 0,
        limit: int | None = None,
        device_id: str | None = None,
        since: int | None = None,
        decision: str | None = None,
    ) -> list[AuditRecord]:
        return [r for r in self.audit if r.seq > after_seq][:limit]

    def ping(self) -> None:
        return None
