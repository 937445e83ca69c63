"""The library behind the admin CLI: every admin action is done here and audited here.

``envattest-server`` (``server._cli``) only parses arguments and prints what these return.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from server.audit import VerifiedChain, verify_chain
from server.config import ServerConfig, load_config
from server.credentials import (
    list_gateway_credentials,
    new_gateway_credential,
    revoke_gateway_credential,
)
from server.errors import ConfigError, ServerError
from server.store import AuditEvent, AuditRecord, DeviceRecord
from server.store.sql import GatewayCredentialRecord, SqlStore, make_engine
from server.tokens import KeyRing, RotatedKeys

DECISIONS = ("allow", "deny", "reject")
# the longest access-token TTL a policy may set (server.policy.loader TTL_RANGE): a key
# retired longer ago than this cannot have signed a token that is still valid
MAX_TOKEN_TTL_S = 86_400


class UnknownDeviceError(ServerError):
    """No device with that id."""


def parse_since(text: str) -> int:
    """Unix seconds from ``1767225600`` or ISO-8601 (``2026-01-01``, ``...T12:00:00Z``)."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ServerError(
            f"--since {text!r} is neither unix seconds nor ISO-8601 (e.g. 2026-01-31T08:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def iso(at: int | None) -> str | None:
    """Unix seconds as ISO-8601 UTC."""
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat()


def audit_record_json(record: AuditRecord) -> dict[str, Any]:
    """One audit record for a SIEM: every column, the hashes, and an ISO time."""
    return {
        "seq": record.seq,
        "at": record.at,
        "time": iso(record.at),
        "event": record.event,
        "device_id": record.device_id,
        "decision": record.decision,
        "data": record.data,
        "data_sha256": record.data_sha256,
        "prev_hash": record.prev_hash,
        "hash": record.hash,
    }


def device_json(device: DeviceRecord) -> dict[str, Any]:
    """A device for ``devices list/show``."""
    state = "erased" if device.erased_at else "revoked" if device.revoked_at else "active"
    return {
        "device_id": device.device_id,
        "key_class": device.key_class,
        "jkt": device.jkt,
        "state": state,
        "enrolled_at": iso(device.enrolled_at),
        "revoked_at": iso(device.revoked_at),
        "erased_at": iso(device.erased_at),
    }


@dataclass(frozen=True)
class Admin:
    """An admin session on a data directory: its configuration and database."""

    config: ServerConfig
    store: SqlStore
    clock: Callable[[], float] = time.time

    def now(self) -> int:
        """The admin clock, in unix seconds."""
        return int(self.clock())

    def audit(self, event: str, data: dict[str, Any], device_id: str | None = None) -> None:
        """Append an ``admin.*`` record."""
        self.store.append_audit(AuditEvent(f"admin.{event}", device_id, None, data))

    # audit log

    def audit_records(self, **filters: Any) -> Iterator[AuditRecord]:
        """Records in order, filtered by device_id, since, decision."""
        return self.store.iter_audit(**filters)

    def verify_audit(self) -> VerifiedChain:
        """Recompute the chain; raises AuditChainError naming the first broken record."""
        return verify_chain(self.store.iter_audit())

    # devices

    def device(self, device_id: str) -> DeviceRecord:
        """The device or UnknownDeviceError."""
        device = self.store.get_device(device_id)
        if device is None:
            raise UnknownDeviceError(
                f"no device {device_id!r}: see 'envattest-server devices list --data-dir ...'"
            )
        return device

    def revoke_device(self, device_id: str) -> DeviceRecord:
        """Revoke now: introspection and forward auth refuse its tokens from this moment."""
        device = self.device(device_id)
        if device.revoked_at is None:
            self.store.set_device_state(device_id, revoked_at=self.now())
        self.audit("device.revoke", {"already_revoked": device.revoked_at is not None}, device_id)
        return self.device(device_id)

    def erase_device(self, device_id: str) -> int:
        """Revoke and drop the signal data of every record of the device."""
        self.device(device_id)
        erased = self.store.erase_device(device_id, now=self.now())
        self.audit("device.erase", {"records_erased": erased}, device_id)
        return erased

    # keys and credentials

    def rotate_keys(self) -> RotatedKeys:
        """New active signing key; old ones stay published until their tokens expire."""
        rotated = KeyRing.rotate(
            self.config.keys_dir, now=self.now(), max_token_ttl_s=MAX_TOKEN_TTL_S
        )
        self.audit(
            "keys.rotate",
            {
                "active": rotated.active,
                "retired": list(rotated.retired),
                "dropped": list(rotated.dropped),
            },
        )
        return rotated

    def create_gateway_credential(self, name: str) -> str:
        """A new gateway credential; the returned string is its only copy."""
        if not 1 <= len(name) <= 128:
            raise ServerError("--name must be 1 to 128 characters")
        made = new_gateway_credential(name, now=self.now())
        self.store.add_gateway_credential(
            made.record,
            AuditEvent(
                "admin.gateway-credential.create",
                None,
                None,
                {"credential_id": made.record.credential_id, "name": name},
            ),
        )
        return made.presented

    def gateway_credentials(self) -> list[GatewayCredentialRecord]:
        """Every gateway credential (ids, names, states; never secrets)."""
        return list_gateway_credentials(self.store)

    def revoke_gateway_credential(self, credential_id: str) -> None:
        """Revoke one credential: introspection refuses it at once on every replica."""
        if not revoke_gateway_credential(self.store, credential_id, now=self.now()):
            raise ServerError(
                f"no active gateway credential {credential_id!r}: "
                "see 'envattest-server gateway-credential list'"
            )
        self.store.append_audit(
            AuditEvent(
                "admin.gateway-credential.revoke", None, None, {"credential_id": credential_id}
            )
        )


def open_admin(data_dir: Path, *, clock: Callable[[], float] = time.time) -> Admin:
    """An admin session; the database must be at this code's schema revision."""
    from server.runtime import check_schema

    config = load_config(data_dir)
    if not config.manifest_path.exists():
        raise ConfigError(f"{config.manifest_path} is missing: is {data_dir} a data directory?")
    store = SqlStore(make_engine(config.resolved_database_url), clock=clock)
    check_schema(store)
    return Admin(config, store, clock)
