"""Tables. Changes here need an Alembic revision under ``migrations/versions``."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

enrollment_tokens = Table(
    "enrollment_tokens",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("uses_left", Integer, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

devices = Table(
    "devices",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("public_jwk", Text, nullable=False),
    Column("jkt", String(64), nullable=False, unique=True),
    Column("key_class", String(32), nullable=False),
    Column("enrolled_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Column("erased_at", BigInteger, nullable=True),
)

nonces = Table(
    "nonces",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("binding", String(128), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("consumed_at", BigInteger, nullable=True),
)
Index("ix_nonces_expires_at", nonces.c.expires_at)

pending_enrollments = Table(
    "pending_enrollments",
    metadata,
    Column("enrollment_id", String(64), primary_key=True),
    Column("public_jwk", Text, nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    Column("details", Text, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", BigInteger, nullable=False),
    Column("event", String(64), nullable=False),
    Column("device_id", String(64), nullable=True),
    Column("decision", String(16), nullable=True),
    Column("data", Text, nullable=True),
    Column("data_sha256", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_audit_device_seq", audit_log.c.device_id, audit_log.c.seq)
Index("ix_audit_at", audit_log.c.at)

# 0002: credentials relying parties (gateways) use to call /v1/introspect
gateway_credentials = Table(
    "gateway_credentials",
    metadata,
    Column("credential_id", String(64), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)

# 0003: signed checkpoints of the audit chain (the signing key is not in the database)
audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("count", BigInteger, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("signature", String(128), nullable=False),
)
Index("ix_audit_checkpoints_count", audit_checkpoints.c.count)

# 0005: DPoP proof replay (jti per key, across replicas), the revocation epoch that lets
# replicas cache device and credential rows, and usage observed at forward auth
dpop_jtis = Table(
    "dpop_jtis",
    metadata,
    Column("key_sha256", String(64), primary_key=True),  # sha256(jkt, jti)
    Column("expires_at", BigInteger, nullable=False),
)
Index("ix_dpop_jtis_expires_at", dpop_jtis.c.expires_at)

revocation_epoch = Table(
    "revocation_epoch",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("epoch", BigInteger, nullable=False),
)

usage_requests = Table(
    "usage_requests",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("minute", BigInteger, primary_key=True),
    Column("device_id", String(64), nullable=False),
    Column("requests", BigInteger, nullable=False),
)
Index("ix_usage_requests_device", usage_requests.c.device_id, usage_requests.c.minute)

usage_networks = Table(
    "usage_networks",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("network", String(64), primary_key=True),
    Column("device_id", String(64), nullable=False),
    Column("first_seen", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
)
Index("ix_usage_networks_device", usage_networks.c.device_id, usage_networks.c.last_seen)

# 0006: console accounts and sessions, the fleet projection the console reads, alerts.
# An account has identities: ("password", username) today; ("oidc:<issuer>", sub) for SSO.
console_users = Table(
    "console_users",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("username", String(128), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("disabled_at", BigInteger, nullable=True),
)

console_identities = Table(
    "console_identities",
    metadata,
    Column("provider", String(128), primary_key=True),
    Column("subject", String(255), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("secret_hash", Text, nullable=True),
)
Index("ix_console_identities_user", console_identities.c.user_id)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("session_sha256", String(64), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("provider", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
Index("ix_console_sessions_expires_at", console_sessions.c.expires_at)

# derived from the audit log (rebuildable): each device's latest state and value counts
fleet_devices = Table(
    "fleet_devices",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("last_at", BigInteger, nullable=False),
    Column("last_decision", String(16), nullable=False),
    Column("attestations", Integer, nullable=False),
    Column("denials", Integer, nullable=False),
    Column("allow_run", Integer, nullable=False),
    Column("timezone", String(128), nullable=True),
    Column("baseurls", Text, nullable=False),
    Column("key_class", String(32), nullable=False),
    Column("state", String(16), nullable=False),
)
Index("ix_fleet_devices_last_at", fleet_devices.c.last_at)
Index("ix_fleet_devices_state_last_at", fleet_devices.c.state, fleet_devices.c.last_at)
Index("ix_fleet_devices_decision", fleet_devices.c.last_decision, fleet_devices.c.device_id)

fleet_values = Table(
    "fleet_values",
    metadata,
    Column("field", String(64), primary_key=True),
    Column("value", String(255), primary_key=True),
    Column("detail", String(64), primary_key=True),
    Column("device_id", String(64), primary_key=True),
)
Index("ix_fleet_values_device", fleet_values.c.device_id)

fleet_value_counts = Table(
    "fleet_value_counts",
    metadata,
    Column("field", String(64), primary_key=True),
    Column("value", String(255), primary_key=True),
    Column("detail", String(64), primary_key=True),
    Column("devices", Integer, nullable=False),
)

# devices by key class and state, and by last decision: read by the fleet page in O(1)
fleet_counts = Table(
    "fleet_counts",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("n", Integer, nullable=False),
)

fleet_daily = Table(
    "fleet_daily",
    metadata,
    Column("day", BigInteger, primary_key=True),
    Column("decision", String(16), primary_key=True),
    Column("count", Integer, nullable=False),
)

fleet_reasons = Table(
    "fleet_reasons",
    metadata,
    Column("reason", String(128), primary_key=True),
    Column("count", Integer, nullable=False),
)

projection_cursor = Table(
    "projection_cursor",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("seq", BigInteger, nullable=False),
)

alert_events = Table(
    "alert_events",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("device_id", String(64), nullable=True),
    Column("audit_seq", BigInteger, nullable=True),
    Column("summary", Text, nullable=False),
)
Index("ix_alert_events_at", alert_events.c.at)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("event_id", Integer, primary_key=True),
    Column("target", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("delivered_at", BigInteger, nullable=True),
)
Index("ix_alert_deliveries_due", alert_deliveries.c.state, alert_deliveries.c.next_attempt_at)
Index("ix_devices_key_class", devices.c.key_class, devices.c.revoked_at, devices.c.erased_at)
Index("ix_devices_revoked_at", devices.c.revoked_at)
