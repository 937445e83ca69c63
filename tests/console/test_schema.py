"""Migration 0006 creates exactly the console's tables and indexes that ``schema.py`` declares."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from server.store.migrate import upgrade
from server.store.schema import metadata
from server.store.sql import make_engine

OURS = (
    "console_",
    "fleet_",
    "projection_cursor",
    "alert_",
    "ix_devices_key_class",
    "ix_devices_revoked_at",
)


def _names(diff: object) -> str:
    return repr(diff)


def test_migration_matches_the_declared_schema(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    ours = [d for d in diffs if any(name in _names(d) for name in OURS)]
    assert ours == []
