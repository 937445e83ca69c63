"""Challenge nonces: MAC'd and stateless to issue, single use when spent, purged after expiry."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from attest.b64 import b64url_decode, b64url_encode
from server.errors import ConfigError
from server.nonces import (
    NONCE_KEY_FILE,
    PURGE_MARGIN_S,
    ChallengeNonces,
    load_nonce_key,
    purge_spent_nonces,
)
from server.store import AuditEvent, NonceOutcome
from server.store.migrate import upgrade
from server.store.sql import SqlStore, make_engine
from tests.pg import database_url
from tests.server.memstore import MemoryStore

NOW = 1_800_000_000
KEY = bytes(range(32))
DEVICE = "device:dev_a"


def nonces(store: MemoryStore | None = None, key: bytes = KEY) -> ChallengeNonces:
    return ChallengeNonces(key, store if store is not None else MemoryStore())


def test_a_nonce_is_32_bytes_and_spent_exactly_once() -> None:
    store = MemoryStore()
    issuer = nonces(store)
    issued = issuer.issue(DEVICE, now=NOW, ttl_s=120)
    assert issued.expires_in == 120
    assert len(b64url_decode(issued.nonce)) == 32
    assert store.spent == {}  # issuing stores nothing
    assert issuer.spend(issued.nonce, binding=DEVICE, now=NOW + 119)[0] is NonceOutcome.CONSUMED
    assert store.spent == {issued.nonce: (DEVICE, NOW + 120, NOW + 119)}
    again = issuer.spend(issued.nonce, binding=DEVICE, now=NOW + 1)
    assert again == (NonceOutcome.ALREADY_USED, None)


def test_the_awaited_spend_checks_and_stores_what_the_blocking_one_does() -> None:
    # the verifier's hot path spends through spend_async: same checks, same row, same record
    store = MemoryStore()
    issuer = nonces(store)
    issued = issuer.issue(DEVICE, now=NOW, ttl_s=120)
    event = AuditEvent("attest", "dev_a", "allow", {})
    wrong = asyncio.run(issuer.spend_async(issued.nonce, binding="device:dev_b", now=NOW))
    assert wrong == (NonceOutcome.UNKNOWN, None)
    assert store.spent == {}  # refused before the store
    outcome, record = asyncio.run(
        issuer.spend_async(issued.nonce, binding=DEVICE, now=NOW + 119, audit=event)
    )
    assert outcome is NonceOutcome.CONSUMED
    assert record is not None
    assert (record.event, record.device_id) == ("attest", "dev_a")
    assert store.spent == {issued.nonce: (DEVICE, NOW + 120, NOW + 119)}
    again = asyncio.run(issuer.spend_async(issued.nonce, binding=DEVICE, now=NOW + 1))
    assert again == (NonceOutcome.ALREADY_USED, None)


def test_two_nonces_differ() -> None:
    issuer = nonces()
    assert (
        issuer.issue(DEVICE, now=NOW, ttl_s=1).nonce != issuer.issue(DEVICE, now=NOW, ttl_s=1).nonce
    )


def test_the_audit_record_is_written_with_the_spend() -> None:
    store = MemoryStore()
    issuer = nonces(store)
    nonce = issuer.issue(DEVICE, now=NOW, ttl_s=60).nonce
    outcome, record = issuer.spend(
        nonce, binding=DEVICE, now=NOW, audit=AuditEvent("attest", "dev_a", "allow", {})
    )
    assert outcome is NonceOutcome.CONSUMED
    assert record is not None
    assert record.event == "attest"
    assert [r.event for r in store.audit] == ["attest"]


def test_expiry_is_exclusive() -> None:
    issuer = nonces()
    nonce = issuer.issue(DEVICE, now=NOW, ttl_s=60).nonce
    assert issuer.spend(nonce, binding=DEVICE, now=NOW + 60) == (NonceOutcome.EXPIRED, None)


@pytest.mark.parametrize(
    "binding", ["device:dev_b", "device:dev_", "enroll:" + "0" * 64, "device:dev_a "]
)
def test_a_nonce_for_another_binding_is_unknown(binding: str) -> None:
    issuer = nonces()
    nonce = issuer.issue(DEVICE, now=NOW, ttl_s=60).nonce
    assert issuer.spend(nonce, binding=binding, now=NOW) == (NonceOutcome.UNKNOWN, None)


def test_a_nonce_from_another_verifier_key_is_unknown() -> None:
    nonce = nonces(key=b"\x01" * 32).issue(DEVICE, now=NOW, ttl_s=60).nonce
    assert nonces().spend(nonce, binding=DEVICE, now=NOW) == (NonceOutcome.UNKNOWN, None)


def test_an_edited_expiry_breaks_the_mac() -> None:
    issuer = nonces()
    raw = bytearray(b64url_decode(issuer.issue(DEVICE, now=NOW, ttl_s=60).nonce))
    raw[3] ^= 0x01  # low byte of expires_at
    edited = b64url_encode(bytes(raw))
    assert issuer.spend(edited, binding=DEVICE, now=NOW) == (NonceOutcome.UNKNOWN, None)


@pytest.mark.parametrize(
    "nonce",
    ["", "!!!", b64url_encode(b"\x00" * 32), b64url_encode(b"\x00" * 31), "A" * 200],
)
def test_malformed_or_forged_nonces_are_unknown(nonce: str) -> None:
    store = MemoryStore()
    assert nonces(store).spend(nonce, binding=DEVICE, now=NOW) == (NonceOutcome.UNKNOWN, None)
    assert store.spent == {}


def test_a_truncated_or_extended_nonce_is_unknown() -> None:
    issuer = nonces()
    raw = b64url_decode(issuer.issue(DEVICE, now=NOW, ttl_s=60).nonce)
    for bad in (raw[:-1], raw + b"\x00"):
        assert issuer.spend(b64url_encode(bad), binding=DEVICE, now=NOW)[0] is NonceOutcome.UNKNOWN


def test_a_flood_of_challenges_costs_no_storage_and_locks_nobody_out() -> None:
    store = MemoryStore()
    issuer = nonces(store)
    owners = issuer.issue(DEVICE, now=NOW, ttl_s=60).nonce
    for _ in range(10_000):
        issuer.issue(DEVICE, now=NOW, ttl_s=60)
    assert store.spent == {}
    assert issuer.spend(owners, binding=DEVICE, now=NOW)[0] is NonceOutcome.CONSUMED


def test_purge_keeps_spent_nonces_for_a_margin_past_expiry() -> None:
    store = MemoryStore()
    store.spent = {
        "gone": (DEVICE, NOW - PURGE_MARGIN_S - 1, 0),
        "edge": (DEVICE, NOW - PURGE_MARGIN_S, 0),
        "live": (DEVICE, NOW + 10, 0),
    }
    assert purge_spent_nonces(store, now=NOW) == 1
    assert set(store.spent) == {"edge", "live"}


def test_the_nonce_key_is_created_once_owner_only(tmp_path: Path) -> None:
    key = load_nonce_key(tmp_path)
    assert len(key) == 32
    assert stat.S_IMODE(os.stat(tmp_path / NONCE_KEY_FILE).st_mode) == 0o600
    assert load_nonce_key(tmp_path) == key


def test_a_damaged_nonce_key_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / NONCE_KEY_FILE).write_bytes(b"short")
    with pytest.raises(ConfigError, match="delete it and restart"):
        load_nonce_key(tmp_path)


def test_an_unwritable_keys_dir_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="envattest-server init"):
        load_nonce_key(tmp_path / "missing")


def test_the_nonce_format_is_fixed() -> None:
    # expires_at (big-endian u32) || random (12) || HMAC-SHA256(key, binding || 0 || head)[:16]:
    # replicas of different versions must agree on it
    import hashlib
    import hmac

    issuer = ChallengeNonces(KEY, MemoryStore(), randomness=lambda n: b"\x07" * n)
    head = (NOW + 60).to_bytes(4, "big") + b"\x07" * 12
    mac = hmac.new(KEY, DEVICE.encode() + b"\x00" + head, hashlib.sha256).digest()[:16]
    assert issuer.issue(DEVICE, now=NOW, ttl_s=60).nonce == b64url_encode(head + mac)


def test_expiries_past_2038_work() -> None:
    late = 2**31 + 1_000
    issuer = nonces()
    nonce = issuer.issue(DEVICE, now=late, ttl_s=60).nonce
    assert issuer.spend(nonce, binding=DEVICE, now=late + 59)[0] is NonceOutcome.CONSUMED


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    engine = make_engine(database_url(request, tmp_path, request.param))
    upgrade(engine)
    try:
        yield SqlStore(engine)
    finally:
        engine.dispose()


def test_the_sql_store_spends_a_nonce_once_with_its_audit_record(sql_store: SqlStore) -> None:
    issuer = ChallengeNonces(KEY, sql_store)
    nonce = issuer.issue(DEVICE, now=NOW, ttl_s=60).nonce
    event = AuditEvent("attest", "dev_a", "allow", {"n": 1})
    outcome, record = issuer.spend(nonce, binding=DEVICE, now=NOW, audit=event)
    assert outcome is NonceOutcome.CONSUMED
    assert record is not None
    assert sql_store.audit_records()[-1].seq == record.seq
    again = issuer.spend(nonce, binding=DEVICE, now=NOW, audit=event)
    assert again == (NonceOutcome.ALREADY_USED, None)
    assert len(sql_store.audit_records()) == 1  # the refused spend wrote nothing
    assert purge_spent_nonces(sql_store, now=NOW + 60 + PURGE_MARGIN_S + 1) == 1
