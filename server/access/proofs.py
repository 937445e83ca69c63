"""DPoP at the relying party: the request a proof must cover, server nonces, replay.

The proof itself is checked by :func:`attest.dpop.verify_proof`, the one implementation the
agent signs with. This module supplies what only the verifier knows: the original request as
the *gateway* reports it, the server's current nonces, and a replay store shared by replicas.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization

from attest.b64 import b64url_encode
from server.access.rowcache import RowCache
from server.errors import ConfigError
from server.store.access import Database, proof_key, prune_proof_ids
from server.tokens import KeyRing

MAX_URI_CHARS = 8192


class OriginalRequestError(Exception):
    """The gateway did not say which request it is asking about; ``fix`` says what to set."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


@dataclass(frozen=True)
class RequestTarget:
    """The request a DPoP proof must cover: method and absolute URL without query."""

    htm: str
    htu: str


def parse_external_url(url: str) -> str:
    """Validate ``authz_external_url``: an absolute http(s) URL without query; no trailing /."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(
            f"authz_external_url {url!r} must be the gateway's external base URL, "
            "e.g. https://llm-gateway.example.com (no query)"
        )
    return url.rstrip("/")


def original_request(
    *,
    external_url: str,
    original_method: str | None,
    original_uri: str | None,
    envoy_path: str | None,
    request_method: str,
) -> RequestTarget:
    """The gateway's view of the client request, joined to the configured external base URL.

    Sources, in order: ``X-Original-Method`` / ``X-Original-URI`` (nginx ``auth_request``,
    set by the gateway and overwriting any the client sent); for Envoy ``ext_authz`` the
    original path appended to ``/v1/authz/`` with the original method. The scheme and host come
    only from configuration, never from the request.
    """
    if not external_url:
        raise OriginalRequestError(
            "the verifier has no external URL for DPoP",
            "set authz_external_url in server.toml to the gateway's external base URL",
        )
    if original_uri is not None:
        method, path = (original_method or "").strip(), original_uri.strip()
    elif envoy_path is not None:
        method, path = request_method, "/" + envoy_path
    else:
        raise OriginalRequestError(
            "the gateway did not forward the original request",
            "configure the gateway to send X-Original-Method and X-Original-URI",
        )
    if not method.isalpha() or len(method) > 16:
        raise OriginalRequestError(
            "the gateway did not forward the original method",
            "add proxy_set_header X-Original-Method $request_method (nginx)",
        )
    if not path.startswith("/") or path.startswith("//") or len(path) > MAX_URI_CHARS:
        raise OriginalRequestError(
            "the forwarded original URI is not an origin-form path",
            "forward $request_uri as X-Original-URI",
        )
    return RequestTarget(htm=method.upper(), htu=external_url + path.split("?", 1)[0])


class DpopNonces:
    """Server nonces (RFC 9449 section 8) that every replica accepts without shared state:
    an HMAC of the time window under a key derived from each token-signing key. The current
    and the previous window are accepted, so a nonce lives between ``ttl_s`` and 2x that."""

    def __init__(
        self,
        ring: Callable[[], KeyRing],
        *,
        ttl_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ring = ring
        self.ttl_s = ttl_s
        self._clock = clock
        self._secrets: dict[str, bytes] = {}
        self._accepted: tuple[int, KeyRing, frozenset[str]] | None = None

    @property
    def enabled(self) -> bool:
        """Whether proofs must carry a server nonce."""
        return self.ttl_s > 0

    def _secret(self, kid: str, ring: KeyRing) -> bytes:
        secret = self._secrets.get(kid)
        if secret is None:
            key = next(k.private_key for k in ring.keys if k.kid == kid)
            der = key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            secret = hashlib.sha256(b"envattest dpop nonce\x00" + der).digest()
            self._secrets[kid] = secret
        return secret

    def _nonce(self, kid: str, ring: KeyRing, window: int) -> str:
        mac = hmac.new(self._secret(kid, ring), window.to_bytes(8, "big"), hashlib.sha256)
        return b64url_encode(mac.digest()[:18])

    def current(self) -> str:
        """The nonce to hand out now."""
        ring = self._ring()
        return self._nonce(ring.active.kid, ring, int(self._clock()) // self.ttl_s)

    def accepted(self) -> frozenset[str]:
        """Nonces a proof may carry now: this window and the last, under every key (computed
        once per window and key ring, not per request)."""
        ring = self._ring()
        window = int(self._clock()) // self.ttl_s
        if self._accepted is not None and self._accepted[:2] == (window, ring):
            return self._accepted[2]
        nonces = frozenset(
            self._nonce(k.kid, ring, w) for k in ring.keys for w in (window, window - 1)
        )
        self._accepted = (window, ring, nonces)
        return nonces


class ProofReplayStore:
    """Spends DPoP proof ids in the database shared by every replica. The insert rides on
    the revocation-epoch round of ``RowCache`` (one transaction per batch of requests), and
    a request learns its answer only after that transaction committed."""

    def __init__(self, database: Database, rows: RowCache) -> None:
        self._database = database
        self._rows = rows

    async def spend(self, *, jkt: str, jti: str, expires_at: int) -> tuple[int, bool]:
        """The revocation epoch of the round, and True the first time this key's ``jti`` is
        seen by any replica within the window."""
        return await self._rows.epoch_spending(proof_key(jkt, jti), expires_at=expires_at)

    def prune(self, *, now: int) -> int:
        """Delete expired ids (blocking; call from a background thread)."""
        return prune_proof_ids(self._database.engine, now=now)
