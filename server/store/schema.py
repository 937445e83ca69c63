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
