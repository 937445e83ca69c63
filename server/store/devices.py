"""Enrolled devices, enrollment tokens and pending TPM enrollments."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, insert, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError

from server.audit.coverage import ERASURE_EVENTS, erasure_covers
from server.store import AuditEvent, DeviceRecord, DuplicateKeyError, PendingEnrollment
from server.store.auditlog import AuditLogStore
from server.store.engine import driver_read
from server.store.schema import audit_log, devices, enrollment_tokens, pending_enrollments

_GET_DEVICE = (
    "SELECT device_id, public_jwk, jkt, key_class, enrolled_at, revoked_at, erased_at"
    " FROM devices WHERE device_id = %s"
)


def device_from_row(row: Any) -> DeviceRecord:
    """A ``DeviceRecord`` from a ``devices`` row."""
    return DeviceRecord(
        device_id=row.device_id,
        public_jwk=json.loads(row.public_jwk),
        jkt=row.jkt,
        key_class=row.key_class,
        enrolled_at=row.enrolled_at,
        revoked_at=row.revoked_at,
        erased_at=row.erased_at,
    )


class DeviceStore(AuditLogStore):
    """Devices and the ways to enroll one."""

    # enrollment tokens

    def add_enrollment_token(self, token_sha256: str, *, uses: int, expires_at: int) -> None:
        """Store a token by its hash."""
        with self._tx() as conn:
            conn.execute(
                insert(enrollment_tokens).values(
                    token_sha256=token_sha256,
                    uses_left=uses,
                    expires_at=expires_at,
                    created_at=int(self._clock()),
                )
            )

    def spend_enrollment_token(self, token_sha256: str, *, now: int) -> bool:
        """One conditional UPDATE: atomic under concurrency on both databases."""
        t = enrollment_tokens.c
        with self._tx() as conn:
            result = conn.execute(
                sql_update(enrollment_tokens)
                .where(t.token_sha256 == token_sha256, t.uses_left > 0, t.expires_at > now)
                .values(uses_left=t.uses_left - 1)
            )
            return result.rowcount == 1

    def enrollment_token_valid(self, token_sha256: str, *, now: int) -> bool:
        """A read: the token exists, has uses left and is unexpired (nothing is spent)."""
        t = enrollment_tokens.c
        with self._read() as conn:
            row = conn.execute(
                select(t.token_sha256).where(
                    t.token_sha256 == token_sha256, t.uses_left > 0, t.expires_at > now
                )
            ).first()
        return row is not None

    # devices

    def add_device(self, device: DeviceRecord, audit: AuditEvent) -> None:
        """Insert the device and its audit record together."""
        try:
            with self._tx() as conn:
                conn.execute(
                    insert(devices).values(
                        device_id=device.device_id,
                        public_jwk=json.dumps(device.public_jwk, sort_keys=True),
                        jkt=device.jkt,
                        key_class=device.key_class,
                        enrolled_at=device.enrolled_at,
                    )
                )
                record = self._append(conn, audit)
        except IntegrityError as exc:
            raise DuplicateKeyError(device.jkt) from exc
        self._committed(record)

    def get_device(self, device_id: str) -> DeviceRecord | None:
        """The device, or None (read on every attestation and token check: driver SQL)."""
        with driver_read(self.engine) as db:
            row = db.execute(self.sql(_GET_DEVICE), (device_id,)).fetchone()
        if row is None:
            return None
        return DeviceRecord(row[0], json.loads(row[1]), *row[2:])

    def list_devices(self) -> list[DeviceRecord]:
        """Every device, by enrollment time."""
        with self._read() as conn:
            rows = conn.execute(select(devices).order_by(devices.c.enrolled_at)).all()
        return [device_from_row(r) for r in rows]

    def set_device_state(
        self, device_id: str, *, revoked_at: int | None = None, erased_at: int | None = None
    ) -> bool:
        """Mark a device revoked and/or erased; False if unknown."""
        values: dict[str, int] = {}
        if revoked_at is not None:
            values["revoked_at"] = revoked_at
        if erased_at is not None:
            values["erased_at"] = erased_at
        with self._tx() as conn:
            result = conn.execute(
                sql_update(devices).where(devices.c.device_id == device_id).values(**values)
            )
            return result.rowcount == 1

    def erase_device(self, device_id: str, *, now: int, audit: AuditEvent | None = None) -> int:
        """Revoke and erase: drop the data of the device's audit records (the chain keeps
        their digests) and mark the device erased. Returns records erased. With ``audit`` (an
        erasure event), the event is appended in the same transaction with
        ``records_erased`` and the ``covers`` member ``audit verify`` checks emptied records
        against; on SQLite the erased bytes are then scrubbed from the files."""
        a = audit_log.c
        record = None
        with self._tx() as conn:
            conn.execute(
                sql_update(devices)
                .where(devices.c.device_id == device_id)
                .values(revoked_at=func.coalesce(devices.c.revoked_at, now), erased_at=now)
            )
            erased = conn.execute(
                sql_update(audit_log)
                .where(a.device_id == device_id, a.data.is_not(None))
                .values(data=None)
            ).rowcount
            if audit is not None:
                if audit.event not in ERASURE_EVENTS or audit.device_id != device_id:
                    raise ValueError(f"an erasure of {device_id} is one of {ERASURE_EVENTS}")
                data = {**audit.data, "records_erased": erased, "covers": erasure_covers(device_id)}
                record = self._append(conn, replace(audit, data=data))
        if record is not None:
            self._committed(record)
        self._scrub()
        return erased

    # pending TPM enrollments

    def add_pending_enrollment(self, pending: PendingEnrollment) -> None:
        """Store a pending TPM enrollment."""
        with self._tx() as conn:
            conn.execute(
                insert(pending_enrollments).values(
                    enrollment_id=pending.enrollment_id,
                    public_jwk=json.dumps(pending.public_jwk, sort_keys=True),
                    secret_sha256=pending.secret_sha256,
                    details=json.dumps(pending.details, sort_keys=True),
                    expires_at=pending.expires_at,
                )
            )

    def take_pending_enrollment(self, enrollment_id: str, *, now: int) -> PendingEnrollment | None:
        """Delete-and-return, so one activation attempt per enrollment."""
        p = pending_enrollments.c
        with self._tx() as conn:
            row = conn.execute(
                select(pending_enrollments).where(p.enrollment_id == enrollment_id)
            ).first()
            if row is None:
                return None
            deleted = conn.execute(
                sql_delete(pending_enrollments).where(p.enrollment_id == enrollment_id)
            )
            if deleted.rowcount != 1 or row.expires_at <= now:
                return None
        return PendingEnrollment(
            enrollment_id=row.enrollment_id,
            public_jwk=json.loads(row.public_jwk),
            secret_sha256=row.secret_sha256,
            details=json.loads(row.details),
            expires_at=row.expires_at,
        )
