"""Statements of the relying-party hot path, each taking a whole batch of requests.

Reads (revocation epoch, device and credential rows, audited token ids) and the one write
(spending DPoP proof ids) run on dedicated threads through ``server.access.batch``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import InterfaceError, OperationalError

from server.store import DeviceRecord
from server.store.devices import device_from_row as _device
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
    """The revocation epoch: bumped by triggers whenever a device or credential row changes."""
    with _connection(engine, write=False) as conn:
        epoch = conn.execute(select(revocation_epoch.c.epoch).where(revocation_epoch.c.id == 1))
        return int(epoch.scalar_one())


class _SqliteConnection:
    """One driver connection of its own to the engine's SQLite file, reopened when the
    engine points elsewhere; statements skip SQLAlchemy (the hot path runs them per batch)."""

    def __init__(self, database: Database, *, synchronous: str) -> None:
        self._database = database
        self._synchronous = synchronous
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
                    self._path, isolation_level=None, check_same_thread=False, timeout=5.0
                )
                connection.execute(f"PRAGMA synchronous={self._synchronous}")
            except sqlite3.Error as exc:
                raise _unavailable(exc) from exc
            self._connection = connection
        return self._connection


class EpochReader:
    """Reads the revocation epoch; on SQLite with one primary-key SELECT in autocommit on a
    connection of its own (a fresh read transaction: it sees every committed change)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._sqlite = _SqliteConnection(database, synchronous="NORMAL")

    def read(self) -> int:
        """The current epoch (blocking; call from a dedicated thread)."""
        db = self._sqlite()
        if db is None:
            return read_epoch(self._database.engine)
        try:
            # fetchall steps to the end, which ends the read transaction: no snapshot is kept
            rows = db.execute("SELECT epoch FROM revocation_epoch WHERE id = 1").fetchall()
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc
        return int(rows[0][0])


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


class ProofIdWriter:
    """Spends DPoP proof ids: ``spend`` inserts a whole batch in one statement.

    The primary key makes this atomic across replicas and processes: of two inserting the
    same key, exactly one gets the row back. A key repeated within the batch is fresh once.
    On SQLite the writer keeps its own connection with ``synchronous=NORMAL``: a commit lost
    to power failure only matters for proofs younger than the iat window (about a minute),
    which a machine that lost power and rebooted is past. PostgreSQL commits normally.
    """

    def __init__(self, database: Database) -> None:
        self._database = database
        self._sqlite = _SqliteConnection(database, synchronous="NORMAL")

    def spend(self, keys: Sequence[tuple[str, int]]) -> list[bool]:
        """True for each ``(key, expires_at)`` whose key no one had spent."""
        unique: dict[str, int] = {}
        for key, expires_at in keys:
            unique.setdefault(key, expires_at)
        db = self._sqlite()
        if db is None:
            fresh = self._insert(self._database.engine, unique)
        else:
            fresh = self._insert_sqlite(db, unique)
        return _answers(keys, fresh)

    @staticmethod
    def _insert(engine: Engine, unique: dict[str, int]) -> set[str]:
        statement = (
            pg_insert(dpop_jtis)
            .values([{"key_sha256": k, "expires_at": e} for k, e in unique.items()])
            .on_conflict_do_nothing(index_elements=["key_sha256"])
            .returning(dpop_jtis.c.key_sha256)
        )
        with _connection(engine, write=True) as conn:
            return set(conn.execute(statement).scalars())

    @staticmethod
    def _insert_sqlite(db: sqlite3.Connection, unique: dict[str, int]) -> set[str]:
        sql = (
            "INSERT INTO dpop_jtis (key_sha256, expires_at) VALUES "  # noqa: S608 (placeholders only)
            + ",".join(["(?, ?)"] * len(unique))
            + " ON CONFLICT (key_sha256) DO NOTHING RETURNING key_sha256"
        )
        params = [value for item in unique.items() for value in item]
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                fresh = {row[0] for row in db.execute(sql, params).fetchall()}
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc
        return fresh


def _answers(keys: Sequence[tuple[str, int]], fresh: set[str]) -> list[bool]:
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
