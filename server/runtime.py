"""The verifier's runtime: database, keys, manifest and policy, built once per process."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from attest.manifest import Manifest, parse_manifest
from server.config import ServerConfig
from server.devices import DeviceService
from server.enrollment import Enrollment
from server.policy import Policy
from server.policy.defaults import default_policy
from server.store.sql import SqlStore, make_engine
from server.tokens import KeyRing, TokenIssuer
from server.verifier import Verifier


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
class Runtime:
    """What the handlers use."""

    config: ServerConfig
    store: SqlStore
    live: LiveDocuments
    verifier: Verifier
    enrollment: Enrollment
    issuer: TokenIssuer
    devices: DeviceService

    @property
    def manifest(self) -> Manifest:
        """The manifest in force."""
        return self.live.manifest

    def reload(self) -> None:
        """Re-read manifest and policy; on any error keep the ones in force."""
        manifest = parse_manifest(self.config.manifest_path.read_bytes())
        policy = load_policy_file(self.config)
        self.live.manifest, self.live.policy = manifest, policy


def build_runtime(config: ServerConfig, *, clock: Callable[[], float] = time.time) -> Runtime:
    """Open the database, load keys, manifest and policy."""
    store = SqlStore(make_engine(config.resolved_database_url), clock=clock)
    live = LiveDocuments(
        manifest=parse_manifest(config.manifest_path.read_bytes()),
        policy=load_policy_file(config),
    )
    issuer = TokenIssuer(KeyRing.load(config.keys_dir), issuer=config.issuer, clock=clock)
    verifier = Verifier(
        store=store,
        issuer=issuer,
        manifest=lambda: live.manifest,
        policy=lambda: live.policy,
        nonce_ttl_s=config.nonce_ttl_s,
        max_iat_skew_s=config.max_iat_skew_s,
        clock=clock,
    )
    return Runtime(
        config=config,
        store=store,
        live=live,
        verifier=verifier,
        enrollment=Enrollment(store, clock=clock),
        issuer=issuer,
        devices=DeviceService(store, clock=clock),
    )
