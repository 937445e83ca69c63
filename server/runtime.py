"""The verifier's runtime: database, keys, manifest and policy, built once per process."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from attest.errors import AttestError
from attest.manifest import Manifest, parse_manifest
from server.access.service import AccessService
from server.config import ServerConfig
from server.devices import DeviceService
from server.enrollment import Enrollment, load_tpm_trust_store
from server.errors import ConfigError, ServerError
from server.metrics import Metrics
from server.nonces import ChallengeNonces, load_nonce_key
from server.policy import Policy, PolicyError
from server.policy.defaults import default_policy
from server.ratelimit import TokenBucketLimiter
from server.store import AuditEvent
from server.store.migrate import current_revision, head_revision
from server.store.sql import SqlStore, make_engine
from server.tokens import KeyRingFile, TokenIssuer
from server.usage.fields import check_usage_disclosed, observed_retention_days
from server.verifier import Verifier

log = logging.getLogger("envattest.server")


def load_policy_file(config: ServerConfig) -> Policy:
    """The policy in the data directory, or the built-in default if there is none."""
    if not config.policy_path.exists():
        return default_policy()
    from server.policy.loader import load_policy

    policy: Policy = load_policy(config.policy_path)
    return policy


@dataclass
class LiveDocuments:
    """Manifest and policy: replaced as a whole on reload (SIGHUP), read per request."""

    manifest: Manifest
    policy: Policy


@dataclass(frozen=True)
class ReloadOutcome:
    """Result of a SIGHUP reload: on failure the previous documents stay in force."""

    ok: bool
    message: str


@dataclass(frozen=True)
class Runtime:
    """What the handlers use."""

    config: ServerConfig
    store: SqlStore
    live: LiveDocuments
    verifier: Verifier
    enrollment: Enrollment
    issuer: TokenIssuer
    devices: DeviceService
    keys: KeyRingFile
    metrics: Metrics
    ip_limiter: TokenBucketLimiter
    device_limiter: TokenBucketLimiter
    access: AccessService

    @property
    def manifest(self) -> Manifest:
        """The manifest in force."""
        return self.live.manifest

    def reload(self) -> None:
        """Re-read manifest, policy and keys; on any error keep the ones in force and raise."""
        manifest = parse_manifest(self.config.manifest_path.read_bytes())
        policy = load_policy_file(self.config)
        check_usage_disclosed(policy, manifest)
        self.keys.reload()
        # one assignment each: a request sees either the old or the new document, never none
        self.live.manifest, self.live.policy = manifest, policy

    def reload_or_keep(self) -> ReloadOutcome:
        """``reload`` for SIGHUP: log and audit the outcome; never raises."""
        try:
            self.reload()
        except (AttestError, PolicyError, ServerError, OSError) as exc:
            message = f"reload failed, previous manifest and policy stay in force: {exc}"
            log.error(message)
            self.metrics.reloads.labels("failed").inc()
            self._audit_reload({"ok": False, "error": str(exc)})
            return ReloadOutcome(False, message)
        message = (
            f"reloaded: manifest {self.live.manifest.sha256[:12]}, policy "
            f"{self.live.policy.version}, signing key {self.issuer.ring.active.kid}"
        )
        log.info(message)
        self.metrics.reloads.labels("ok").inc()
        self._audit_reload(
            {
                "ok": True,
                "manifest_sha256": self.live.manifest.sha256,
                "policy_version": self.live.policy.version,
                "active_kid": self.issuer.ring.active.kid,
            }
        )
        return ReloadOutcome(True, message)

    def _audit_reload(self, data: dict[str, object]) -> None:
        try:
            self.store.append_audit(AuditEvent("admin.reload", None, None, data))
        except ServerError as exc:
            log.error("could not write the reload audit record: %s", exc)


def check_schema(store: SqlStore) -> None:
    """Refuse to serve a database at another schema revision than this code's."""
    current, head = current_revision(store.engine), head_revision()
    if current != head:
        raise ConfigError(
            f"the database is at schema revision {current or 'none'}, this server needs {head}: "
            "run 'envattest-server migrate --data-dir ...' (once, from one host), then start again"
        )


def build_runtime(config: ServerConfig, *, clock: Callable[[], float] = time.time) -> Runtime:
    """Open the database, load keys, manifest and policy."""
    metrics = Metrics()
    store = SqlStore(
        make_engine(config.resolved_database_url), clock=clock, on_audit=metrics.observe_audit
    )
    check_schema(store)
    live = LiveDocuments(
        manifest=parse_manifest(config.manifest_path.read_bytes()),
        policy=load_policy_file(config),
    )
    check_usage_disclosed(live.policy, live.manifest)
    keys = KeyRingFile(config.keys_dir)
    issuer = TokenIssuer(keys, issuer=config.issuer, clock=clock)
    nonces = ChallengeNonces(load_nonce_key(config.keys_dir), store)
    access = AccessService(
        config,
        store=store,
        issuer=issuer,
        policy=lambda: live.policy,
        usage_retention_days=lambda: observed_retention_days(live.manifest),
        clock=clock,
    )
    verifier = Verifier(
        store=store,
        nonces=nonces,
        issuer=issuer,
        manifest=lambda: live.manifest,
        policy=lambda: live.policy,
        nonce_ttl_s=config.nonce_ttl_s,
        max_iat_skew_s=config.max_iat_skew_s,
        devices=access.rows.device,  # cached per process, revocation effective at once
        clock=clock,
    )
    return Runtime(
        config=config,
        store=store,
        live=live,
        verifier=verifier,
        enrollment=Enrollment(
            store,
            nonces,
            trust_store=load_tpm_trust_store(config.tpm_roots_dir),
            ttl_s=config.enrollment_ttl_s,
            clock=clock,
        ),
        issuer=issuer,
        devices=DeviceService(store, nonces, clock=clock),
        keys=keys,
        metrics=metrics,
        ip_limiter=TokenBucketLimiter(config.rate_limit_per_minute),
        device_limiter=TokenBucketLimiter(config.device_rate_limit_per_minute),
        access=access,
    )
