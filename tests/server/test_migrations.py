"""Schema migrations keep data: a database at 0001 with data, upgraded to head, on SQLite
and PostgreSQL; and a server refuses a database behind its schema until ``migrate``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text

from server.audit import verify_chain
from server.store import AuditEvent
from server.store.migrate import current_revision, head_revision, upgrade
from server.store.sql import SqlStore, make_engine
from tests.pg import database_url


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(database_url(request, tmp_path, request.param))
    try:
        yield made
    finally:
        made.dispose()


def test_upgrade_from_0001_keeps_every_row(engine: Engine) -> None:
    upgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    assert "gateway_credentials" not in inspect(engine).get_table_names()
    store = SqlStore(engine)
    # data written by the 0001 schema, through the same SQL the old code used
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO devices (device_id, public_jwk, jkt, key_class, enrolled_at)"
                " VALUES ('dev_old', :jwk, 'jkt-old', 'software', 1700000000)"
            ),
            {"jwk": json.dumps({"kty": "EC"})},
        )
        conn.execute(
            text(
                "INSERT INTO nonces (nonce, binding, expires_at)"
                " VALUES ('n1', 'device:dev_old', 4102444800)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO enrollment_tokens (token_sha256, uses_left, expires_at, created_at)"
                " VALUES (:t, 3, 4102444800, 1700000000)"
            ),
            {"t": "a" * 64},
        )
    for i in range(3):
        store.append_audit(AuditEvent("attest", "dev_old", "allow", {"i": i}))
    head_before = verify_chain(store.audit_records()).head_hash

    upgrade(engine)

    assert current_revision(engine) == head_revision()
    assert "gateway_credentials" in inspect(engine).get_table_names()
    device = store.get_device("dev_old")
    assert device is not None
    assert device.jkt == "jkt-old"
    assert device.public_jwk == {"kty": "EC"}
    assert store.spend_enrollment_token("a" * 64, now=1700000001)
    chain = verify_chain(store.audit_records())
    assert chain.records == 3
    assert chain.head_hash == head_before
    assert [r.data for r in store.audit_records()] == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_serve_refuses_an_old_schema_until_migrate(tmp_path: Path) -> None:
    from server.config import load_config
    from server.datadir import init_data_dir
    from server.errors import ConfigError
    from server.runtime import build_runtime
    from tests.servers import run_server_cli

    config = init_data_dir(tmp_path / "v", issuer="t")
    engine = make_engine(config.resolved_database_url)
    with engine.begin() as conn:
        # back to 0001: drop what later revisions added (tables and triggers)
        triggers = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        for (trigger,) in triggers.all():
            conn.execute(text(f"DROP TRIGGER {trigger}"))
        later = ("gateway_credentials", "dpop_jtis", "revocation_epoch", "usage_requests",
                 "usage_networks", "audit_checkpoints")  # fmt: skip
        # 0006 (console): its tables, and its indexes on devices
        later += ("console_users", "console_identities", "console_sessions", "fleet_devices",
                  "fleet_values", "fleet_value_counts", "fleet_counts", "fleet_daily",
                  "fleet_reasons", "projection_cursor", "alert_events",
                  "alert_deliveries")  # fmt: skip
        for index in ("ix_devices_key_class", "ix_devices_revoked_at"):
            conn.execute(text(f"DROP INDEX IF EXISTS {index}"))
        for table in later:
            conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    engine.dispose()
    with pytest.raises(ConfigError, match="envattest-server migrate"):
        build_runtime(load_config(config.data_dir))
    out = run_server_cli(["migrate", "--data-dir", str(config.data_dir)])
    assert f"0001 -> {head_revision()}" in out
    runtime = build_runtime(load_config(config.data_dir))
    runtime.store.engine.dispose()
