"""What a device may ask about itself: ``whoami`` (what the verifier holds) and ``forget``
(revoke and erase its signal history, leaving a minimal "erased" audit entry)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from attest.devicerequest import DeviceAction, parse_device_request
from attest.errors import AlgorithmError, FormatError, SignatureError
from attest.jose import verify_es256
from attest.jwk import load_public_jwk
from server.errors import UnauthorizedError
from server.nonces import ChallengeNonces
from server.store import AuditEvent, DeviceRecord, NonceOutcome
from server.store.sql import SqlStore
from server.usage.store import device_usage, erase_usage
from server.verifier import device_binding

_UNAUTHORIZED = "the device request was not accepted; run the command again"


class DeviceService:
    """Device self-service, authenticated by a signature of the enrolled key over a nonce."""

    def __init__(
        self, store: SqlStore, nonces: ChallengeNonces, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.nonces = nonces
        self._clock = clock

    def authenticate(self, body: bytes, *, action: DeviceAction) -> DeviceRecord:
        """(1) parse, (2) ES256 only, (3) active device, (4) signature, (5) nonce single use."""
        try:
            request = parse_device_request(body)
        except (FormatError, AlgorithmError) as exc:
            raise UnauthorizedError(_UNAUTHORIZED, audit_detail=str(exc)) from exc
        if request.action is not action:
            raise UnauthorizedError(_UNAUTHORIZED, audit_detail="action mismatch")
        device = self.store.get_device(request.device_id)
        if device is None or not device.active:
            raise UnauthorizedError(
                "this device is not enrolled or was revoked", audit_detail="inactive device"
            )
        try:
            verify_es256(request.jws, expected_key=load_public_jwk(device.public_jwk))
        except SignatureError as exc:
            raise UnauthorizedError(_UNAUTHORIZED, audit_detail=str(exc)) from exc
        outcome, _ = self.nonces.spend(
            request.nonce, binding=device_binding(device.device_id), now=int(self._clock())
        )
        if outcome is not NonceOutcome.CONSUMED:
            raise UnauthorizedError(_UNAUTHORIZED, audit_detail=f"nonce {outcome.value}")
        return device

    def whoami(self, device: DeviceRecord) -> dict[str, Any]:
        """Everything the verifier holds about the device."""
        records = self.store.audit_records(device_id=device.device_id)
        return {
            "device_id": device.device_id,
            "key_class": device.key_class,
            "jkt": device.jkt,
            "enrolled_at": device.enrolled_at,
            "revoked_at": device.revoked_at,
            # verifier-observed: what forward auth saw of this device's tokens (last flush)
            "usage": device_usage(self.store.engine, device.device_id),
            "records": [
                {
                    "seq": r.seq,
                    "at": r.at,
                    "event": r.event,
                    "decision": r.decision,
                    "data": r.data,
                }
                for r in records
            ],
        }

    def forget(self, device: DeviceRecord) -> dict[str, Any]:
        """Revoke, erase signal history, keep one minimal audit entry."""
        now = int(self._clock())
        usage = erase_usage(self.store.engine, device.device_id)
        erased = self.store.erase_device(
            device.device_id,
            now=now,
            audit=AuditEvent("device.erased", device.device_id, None, {"usage_rows_erased": usage}),
        )
        return {
            "device_id": device.device_id,
            "erased_records": erased,
            "erased_usage_rows": usage,
            "revoked_at": now,
        }
