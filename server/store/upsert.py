"""Portable ``INSERT ... ON CONFLICT`` for SQLite and PostgreSQL (the projection's writes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    keys: Sequence[str],
    add: Sequence[str] = (),
) -> None:
    """Insert ``rows``; on a key conflict add the ``add`` columns to the stored ones and
    replace every other column."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    values = {
        name: (table.c[name] + stmt.excluded[name]) if name in add else stmt.excluded[name]
        for name in rows[0]
        if name not in keys
    }
    conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=values), list(rows))
