"""Console accounts and sessions, the fleet projection, alert events and deliveries.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the console, projection and alert tables; existing tables are untouched."""
    op.create_table(
        "console_users",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(128), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("disabled_at", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "console_identities",
        sa.Column("provider", sa.String(128), primary_key=True),
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.Text, nullable=True),
    )
    op.create_table(
        "console_sessions",
        sa.Column("session_sha256", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "fleet_devices",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("last_at", sa.BigInteger, nullable=False),
        sa.Column("last_decision", sa.String(16), nullable=False),
        sa.Column("attestations", sa.Integer, nullable=False),
        sa.Column("denials", sa.Integer, nullable=False),
        sa.Column("allow_run", sa.Integer, nullable=False),
        sa.Column("timezone", sa.String(128), nullable=True),
        sa.Column("baseurls", sa.Text, nullable=False),
        sa.Column("key_class", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
    )
    op.create_table(
        "fleet_values",
        sa.Column("field", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(255), primary_key=True),
        sa.Column("detail", sa.String(64), primary_key=True),
        sa.Column("device_id", sa.String(64), primary_key=True),
    )
    op.create_table(
        "fleet_value_counts",
        sa.Column("field", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(255), primary_key=True),
        sa.Column("detail", sa.String(64), primary_key=True),
        sa.Column("devices", sa.Integer, nullable=False),
    )
    op.create_table(
        "fleet_counts",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
    )
    op.create_table(
        "fleet_daily",
        sa.Column("day", sa.BigInteger, primary_key=True),
        sa.Column("decision", sa.String(16), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_table(
        "fleet_reasons",
        sa.Column("reason", sa.String(128), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_table(
        "projection_cursor",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "alert_events",
        sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=True),
        sa.Column("audit_seq", sa.BigInteger, nullable=True),
        sa.Column("summary", sa.Text, nullable=False),
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("event_id", sa.Integer, primary_key=True),
        sa.Column("target", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("delivered_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_console_identities_user", "console_identities", ["user_id"])
    op.create_index("ix_console_sessions_expires_at", "console_sessions", ["expires_at"])
    op.create_index("ix_fleet_devices_last_at", "fleet_devices", ["last_at"])
    op.create_index("ix_fleet_devices_state_last_at", "fleet_devices", ["state", "last_at"])
    op.create_index("ix_fleet_devices_decision", "fleet_devices", ["last_decision", "device_id"])
    op.create_index("ix_fleet_values_device", "fleet_values", ["device_id"])
    op.create_index("ix_alert_events_at", "alert_events", ["at"])
    op.create_index("ix_alert_deliveries_due", "alert_deliveries", ["state", "next_attempt_at"])
    op.create_index("ix_devices_key_class", "devices", ["key_class", "revoked_at", "erased_at"])
    op.create_index("ix_devices_revoked_at", "devices", ["revoked_at"])
