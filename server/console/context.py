"""What the console's pages use, built once per process from the data directory."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from attest.manifest import Manifest, parse_manifest
from server.alerts.config import AlertSettings, parse_alert_settings
from server.config import ServerConfig
from server.console.accounts import PasswordAuthenticator, SessionService
from server.console.settings import ConsoleSettings, parse_console_settings
from server.metrics import Metrics
from server.ratelimit import TokenBucketLimiter
from server.runtime import check_schema, load_policy_file
from server.store import AuditEvent
from server.store.alerts import AlertStore
from server.store.console import ConsoleAccountStore
from server.store.fleet import FleetProjection
from server.store.fleet_queries import AuditQueries, FleetQueries
from server.store.sql import SqlStore, make_engine


@dataclass
class ConsoleContext:
    """Stores, services and documents behind the console's pages."""

    config: ServerConfig
    settings: ConsoleSettings
    alert_settings: AlertSettings
    store: SqlStore
    accounts: ConsoleAccountStore
    sessions: SessionService
    authenticator: PasswordAuthenticator
    fleet: FleetQueries
    audit: AuditQueries
    alerts: AlertStore
    projection: FleetProjection
    metrics: Metrics
    ip_limiter: TokenBucketLimiter
    user_limiter: TokenBucketLimiter
    secure_cookies: bool
    clock: Callable[[], float] = time.time
    _cached: tuple[tuple[int, ...], Manifest, int] | None = None

    def now(self) -> int:
        """The console clock, unix seconds."""
        return int(self.clock())

    def manifest(self) -> Manifest:
        """The manifest in force (re-read when the file changes: the verifier may reload)."""
        return self._documents()[0]

    def token_ttl_s(self) -> int:
        """The policy's access-token lifetime: a device silent for longer holds no token."""
        return self._documents()[1]

    def _documents(self) -> tuple[Manifest, int]:
        paths = (self.config.manifest_path, self.config.policy_path)
        stamp = tuple(p.stat().st_mtime_ns if p.exists() else 0 for p in paths)
        if self._cached is None or self._cached[0] != stamp:
            manifest = parse_manifest(self.config.manifest_path.read_bytes())
            policy = load_policy_file(self.config)
            self._cached = (stamp, manifest, policy.token.ttl_s)
        return self._cached[1], self._cached[2]

    def record(self, event: str, data: dict[str, Any], device_id: str | None = None) -> None:
        """Append a ``console.*`` audit record (page views, sign-ins, verify runs)."""
        self.store.append_audit(AuditEvent(f"console.{event}", device_id, None, data))


def build_console_context(
    config: ServerConfig, *, secure_cookies: bool, clock: Callable[[], float] = time.time
) -> ConsoleContext:
    """Open the database (at this code's schema) and read the console's settings."""
    settings = parse_console_settings(config.console)
    alert_settings = parse_alert_settings(config.alerts, config.data_dir)
    metrics = Metrics()
    store = SqlStore(make_engine(config.resolved_database_url), clock=clock)
    check_schema(store)
    accounts = ConsoleAccountStore(store.engine)
    return ConsoleContext(
        config=config,
        settings=settings,
        alert_settings=alert_settings,
        store=store,
        accounts=accounts,
        sessions=SessionService(accounts, ttl_s=settings.session_ttl_s, clock=clock),
        authenticator=PasswordAuthenticator(accounts),
        fleet=FleetQueries(store.engine),
        audit=AuditQueries(store.engine),
        alerts=AlertStore(store.engine),
        projection=FleetProjection(
            store.engine,
            alert_targets=lambda: alert_settings.targets,
            allow_run=alert_settings.allow_run,
        ),
        metrics=metrics,
        ip_limiter=TokenBucketLimiter(settings.sign_in_per_minute),
        user_limiter=TokenBucketLimiter(settings.sign_in_per_minute),
        secure_cookies=secure_cookies,
        clock=clock,
    )
