"""DPoP replay store, revocation epoch, usage observed at forward auth.

The epoch is bumped by triggers on every change to a device or a gateway credential, so
whichever process revokes (admin CLI, ``forget``, another replica) every replica sees the new
epoch with one primary-key read and drops its cached rows.

Revision ID: 0005
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0002"
branch_labels = None
depends_on = None

_WATCHED = ("devices", "gateway_credentials")
_BUMP = "UPDATE revocation_epoch SET epoch = epoch + 1 WHERE id = 1"


def _create_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION envattest_bump_epoch() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {_BUMP}; RETURN NULL; END $$"
        )
        for table in _WATCHED:
            op.execute(
                f"CREATE TRIGGER {table}_bump_epoch AFTER UPDATE OR DELETE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION envattest_bump_epoch()"
            )
        return
    for table in _WATCHED:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_{action.lower()}_bump_epoch AFTER {action} ON {table} "
                f"BEGIN {_BUMP}; END"
            )


def upgrade() -> None:
    """Add the tables and triggers; existing tables and rows are untouched."""
    op.create_table(
        "dpop_jtis",
        sa.Column("key_sha256", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_dpop_jtis_expires_at", "dpop_jtis", ["expires_at"])
    epoch = op.create_table(
        "revocation_epoch",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(epoch, [{"id": 1, "epoch": 0}])
    op.create_table(
        "usage_requests",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("minute", sa.BigInteger, primary_key=True),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_usage_requests_device", "usage_requests", ["device_id", "minute"])
    op.create_table(
        "usage_networks",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("network", sa.String(64), primary_key=True),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("first_seen", sa.BigInteger, nullable=False),
        sa.Column("last_seen", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_usage_networks_device", "usage_networks", ["device_id", "last_seen"])
    _create_triggers()
