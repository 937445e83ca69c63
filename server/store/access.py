"""Statements of the relying-party hot path, each taking a whole batch of requests.

Reads (revocation epoch, device and credential rows, audited token ids) and the one write
(spending DPoP proof ids) run on dedicated threads through ``server.access.batch``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import InterfaceError, OperationalError

from server.store import DeviceRecord
from server.store.schema import audit_log, devices, dpop_jtis, gateway_credentials, revocation_epoch
from server.store.sql import GatewayCredentialRecord, _device, _unavailable


@contextmanager
def _connection(engine: Engine, *, write: bool) -> Iterator[Connection]:
    try:
        if write:
            with engine.begin() as conn:
                yield conn
        else:
            with engine.connect().execution_options(envattest_read_only=True) as conn:
                yield conn
    except (OperationalError, InterfaceError) as exc:
        raise _unavailable(exc) from exc


def read_epoch(engine: Engine) -> int:
    """The revocation epoch: bumped by triggers whenever a device or credential row changes."""
    with _connection(engine, write=False) as conn:
        epoch = conn.execute(select(revocation_epoch.c.epoch).where(revocation_epoch.c.id == 1))
        return int(epoch.scalar_one())


def read_devices(engine: Engine, device_ids: Sequence[str]) -> dict[str, DeviceRecord]:
    """The devices among ``device_ids`` that exist, in one statement."""
    with _connection(engine, write=False) as conn:
        rows = conn.execute(select(devices).where(devices.c.device_id.in_(set(device_ids))))
        return {row.device_id: _device(row) for row in rows}


def read_credentials(
    engine: Engine, credential_ids: Sequence[str]
) -> dict[str, GatewayCredentialRecord]:
    """The gateway credentials among ``credential_ids`` that exist."""
    g = gateway_credentials.c
    with _connection(engine, write=False) as conn:
        rows = conn.execute(
            select(gateway_credentials).where(g.credential_id.in_(set(credential_ids)))
        )
        return {
            row.credential_id: GatewayCredentialRecord(
                row.credential_id, row.name, row.secret_sha256, row.created_at, row.revoked_at
            )
            for row in rows
        }


def proof_key(jkt: str, jti: str) -> str:
    """Replay-store key: a proof id is unique per signing key (RFC 9449 section 11.1)."""
    return hashlib.sha256(f"{jkt}\x00{jti}".encode()).hexdigest()


def spend_proof_ids(engine: Engine, keys: Sequence[tuple[str, int]]) -> list[bool]:
    """Insert every ``(key, expires_at)`` in one statement; True where the key was new.

    The primary key makes this atomic across replicas: of two replicas inserting the same key,
    exactly one gets the row back. A key repeated within the batch is fresh only once.
    """
    unique: dict[str, int] = {}
    for key, expires_at in keys:
        unique.setdefault(key, expires_at)
    rows = [{"key_sha256": k, "expires_at": e} for k, e in unique.items()]
    insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(dpop_jtis)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["key_sha256"])
        .returning(dpop_jtis.c.key_sha256)
    )
    with _connection(engine, write=True) as conn:
        fresh = set(conn.execute(statement).scalars())
    answers = []
    for key, _ in keys:
        answers.append(key in fresh)
        fresh.discard(key)
    return answers


def prune_proof_ids(engine: Engine, *, now: int) -> int:
    """Drop proof ids whose proofs are past their ``iat`` window (they are refused anyway)."""
    with _connection(engine, write=True) as conn:
        return conn.execute(delete(dpop_jtis).where(dpop_jtis.c.expires_at < now)).rowcount


def audited_allow_jtis(engine: Engine, wanted: Sequence[tuple[str, str, int]]) -> list[bool]:
    """For each ``(device_id, jti, iat)``: does an audited ``allow`` name that token id?

    Looks at the device's attestation records around the token's ``iat`` (the record is
    committed before the token is signed, in the same second or just before)."""
    a = audit_log.c
    answers = []
    with _connection(engine, write=False) as conn:
        for device_id, jti, iat in wanted:
            rows = conn.execute(
                select(a.data).where(
                    a.device_id == device_id,
                    a.event == "attest",
                    a.decision == "allow",
                    a.at.between(iat - 60, iat + 5),
                )
            )
            answers.append(
                any(data is not None and json.loads(data).get("jti") == jti for (data,) in rows)
            )
    return answers
