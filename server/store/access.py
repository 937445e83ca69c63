"""Statements of the relying-party hot path, each taking a whole batch of requests.

Reads (revocation epoch, device and credential rows, audited token ids) and the one write
(spending DPoP proof ids, in the same round as the epoch read) run on dedicated threads
through ``server.access.batch``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import InterfaceError, OperationalError

from server.store import DeviceRecord
from server.store.devices import device_from_row as _device
from server.store.engine import driver_read
from server.store.engine import unavailable as _unavailable
from server.store.gateways import GatewayCredentialRecord
from server.store.schema import audit_log, devices, dpop_jtis, gateway_credentials, revocation_epoch


class Database(Protocol):
    """What the hot path needs of the store: its engine, read at each use (so a replaced or
    reconnected engine is picked up)."""

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine."""
        ...


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
    """The revocation epoch: bumped by triggers whenever a device or credential row changes.
    One driver statement in autocommit (prepared on PostgreSQL): one round trip."""
    with driver_read(engine) as db:
        if engine.dialect.name == "postgresql":
            return _epoch(db.execute(_EPOCH, prepare=True).fetchall())
        return _epoch(db.execute(_EPOCH).fetchall())


class _SqliteConnection:
    """One driver connection of its own to the engine's SQLite file, reopened when the
    engine points elsewhere; statements skip SQLAlchemy (the hot path runs them per batch)."""

    def __init__(self, database: Database, *, synchronous: str, timeout_s: float = 5.0) -> None:
        self._database = database
        self._synchronous = synchronous
        self._timeout_s = timeout_s
        self._path: str | None = None
        self._connection: sqlite3.Connection | None = None

    def __call__(self) -> sqlite3.Connection | None:
        """The connection, or None when the database is not SQLite."""
        engine = self._database.engine
        if engine.dialect.name != "sqlite":
            return None
        if engine.url.database != self._path or self._connection is None:
            self._path = engine.url.database
            assert self._path is not None
            try:
                connection = sqlite3.connect(
                    self._path,
                    isolation_level=None,
                    check_same_thread=False,
                    timeout=self._timeout_s,
                )
                connection.execute(f"PRAGMA synchronous={self._synchronous}")
            except sqlite3.Error as exc:
                raise _unavailable(exc) from exc
            self._connection = connection
        return self._connection


class AccessRound:
    """One database round for a batch of hot-path requests: the revocation epoch, and the
    batch's DPoP proof ids spent in the same transaction.

    Spending is atomic across replicas and processes through the primary key: of two
    inserting the same key, exactly one gets the row back. On SQLite the round runs on a
    connection of its own with ``synchronous=NORMAL``: a committed id is visible to every
    process at once and survives a crash of the verifier; a power failure can lose the last
    commits, which only matters for proofs younger than the iat window (about a minute),
    and a machine that lost power and rebooted is past it. PostgreSQL commits normally.
    """

    def __init__(self, database: Database) -> None:
        self._database = database
        self._sqlite = _SqliteConnection(database, synchronous="NORMAL")
        self._at_once = _SqliteConnection(database, synchronous="NORMAL", timeout_s=0.0)

    def epoch_at_once(self) -> int | None:
        """On SQLite, the epoch read right here if nothing is in the way, else None (then the
        caller takes the batched round). A WAL reader takes no lock a writer holds, so this
        is one page read from the page cache, cheaper than handing it to a thread; with a
        zero busy timeout it never waits (it only could during crash recovery)."""
        db = self._at_once()
        if db is None:
            return None
        try:
            return _epoch(db.execute(_EPOCH).fetchall())
        except sqlite3.Error:
            return None

    def run(self, spend: Mapping[str, int]) -> tuple[int, set[str]]:
        """The current epoch, and the keys of ``spend`` (key -> expires_at) no one had spent
        (blocking; call from a dedicated thread)."""
        db = self._sqlite()
        if db is None:
            return self._run_engine(self._database.engine, spend)
        try:
            if not spend:
                # fetchall steps to the end, which ends the read transaction at once
                return _epoch(db.execute(_EPOCH).fetchall()), set()
            db.execute("BEGIN IMMEDIATE")
            try:
                fresh = {row[0] for row in db.execute(_spend_sql(len(spend)), _flat(spend))}
                epoch = _epoch(db.execute(_EPOCH).fetchall())
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc
        return epoch, fresh

    @staticmethod
    def _run_engine(engine: Engine, spend: Mapping[str, int]) -> tuple[int, set[str]]:
        if not spend:
            return read_epoch(engine), set()
        statement = (
            pg_insert(dpop_jtis)
            .values([{"key_sha256": k, "expires_at": e} for k, e in spend.items()])
            .on_conflict_do_nothing(index_elements=["key_sha256"])
            .returning(dpop_jtis.c.key_sha256)
        )
        epoch = select(revocation_epoch.c.epoch).where(revocation_epoch.c.id == 1)
        with _connection(engine, write=True) as conn:
            fresh = set(conn.execute(statement).scalars())
            return int(conn.execute(epoch).scalar_one()), fresh


_EPOCH = "SELECT epoch FROM revocation_epoch WHERE id = 1"


def _epoch(rows: list[Any]) -> int:
    return int(rows[0][0])


def _spend_sql(count: int) -> str:
    return (
        "INSERT INTO dpop_jtis (key_sha256, expires_at) VALUES "  # noqa: S608 (placeholders only)
        + ",".join(["(?, ?)"] * count)
        + " ON CONFLICT (key_sha256) DO NOTHING RETURNING key_sha256"
    )


def _flat(spend: Mapping[str, int]) -> list[str | int]:
    return [value for item in spend.items() for value in item]


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
