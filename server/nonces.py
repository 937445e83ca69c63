"""Challenge nonces: free to issue, single use when spent (DESIGN: challenge).

A nonce is 32 bytes, base64url: ``expires_at (4) || random (12) || MAC (16)``, where MAC is
HMAC-SHA256 under a verifier key over the binding (``device:<id>`` or ``enroll:<token hash>``),
the expiry and the random part. Issuing one writes nothing, so a flood of challenges under
somebody else's device id costs no storage and cannot crowd out the owner's nonces: there is
no per-device pool to exhaust. Spending checks the MAC (this verifier issued it, for this
binding) and the expiry, and only then records the nonce as spent with one insert that the
database makes atomic, so exactly one spend succeeds, across replicas. The only stored nonces
are spent ones, each behind a device signature or an enrollment token, kept until expiry.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from attest.b64 import b64url_decode, b64url_encode
from attest.errors import FormatError
from server.errors import ConfigError
from server.store import AuditEvent, AuditRecord, NonceOutcome, Store

NONCE_KEY_FILE = "nonce-mac.key"
NONCE_BYTES = 32
_EXPIRY, _RANDOM, _MAC = 4, 12, 16
# spent nonces are kept this long past expiry, so a replica whose clock runs behind the one
# that purged still finds them spent
PURGE_MARGIN_S = 300


@dataclass(frozen=True)
class IssuedNonce:
    """A nonce and how long it stays spendable."""

    nonce: str
    expires_in: int


def load_nonce_key(keys_dir: Path) -> bytes:
    """The MAC key in ``keys_dir``, created (owner-only, exclusively) if there is none yet."""
    path = keys_dir / NONCE_KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(
            f"cannot create {path} ({exc.strerror}): run 'envattest-server init' on a writable "
            "data directory, or copy keys/ from a replica that has it"
        ) from exc
    else:
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
            out.flush()
            os.fsync(out.fileno())
    key = path.read_bytes()
    if len(key) != 32:
        raise ConfigError(f"{path} must hold 32 bytes; delete it and restart to create a new one")
    return key


class ChallengeNonces:
    """Issues MAC'd nonces and spends them once through the store."""

    def __init__(
        self,
        key: bytes,
        store: Store,
        *,
        randomness: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self._key = key
        self._store = store
        self._randomness = randomness

    def _mac(self, binding: str, head: bytes) -> bytes:
        message = binding.encode() + b"\x00" + head
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC]

    def issue(self, binding: str, *, now: int, ttl_s: int) -> IssuedNonce:
        """A fresh nonce bound to ``binding``; nothing is stored."""
        head = struct.pack(">I", now + ttl_s) + self._randomness(_RANDOM)
        return IssuedNonce(b64url_encode(head + self._mac(binding, head)), ttl_s)

    def _expires_at(self, nonce: str, *, binding: str) -> int | None:
        """The expiry of a nonce this verifier issued for ``binding``, or None."""
        try:
            raw = b64url_decode(nonce)
        except FormatError:
            return None
        head, mac = raw[: _EXPIRY + _RANDOM], raw[_EXPIRY + _RANDOM :]
        if len(raw) != NONCE_BYTES or not hmac.compare_digest(mac, self._mac(binding, head)):
            return None
        expires_at: int = struct.unpack(">I", head[:_EXPIRY])[0]
        return expires_at

    def _check(self, nonce: str, *, binding: str, now: int) -> NonceOutcome | int:
        """Steps (1)-(2) of a spend: the nonce's expiry, or why it cannot be spent."""
        # (1) issued by this verifier for this binding: another device's nonce, or one for
        #     another enrollment token, fails the MAC exactly like a forged one
        expires_at = self._expires_at(nonce, binding=binding)
        if expires_at is None:
            return NonceOutcome.UNKNOWN
        # (2) fresh
        if expires_at <= now:
            return NonceOutcome.EXPIRED
        return expires_at

    def spend(
        self, nonce: str, *, binding: str, now: int, audit: AuditEvent | None = None
    ) -> tuple[NonceOutcome, AuditRecord | None]:
        """Spend a nonce once, with ``audit`` in the same commit (DESIGN: attest)."""
        checked = self._check(nonce, binding=binding, now=now)
        if isinstance(checked, NonceOutcome):
            return checked, None
        # (3) single use: exactly one insert of this nonce succeeds, across replicas
        return self._store.spend_nonce(
            nonce, binding=binding, expires_at=checked, now=now, audit=audit
        )

    async def spend_async(
        self, nonce: str, *, binding: str, now: int, audit: AuditEvent | None = None
    ) -> tuple[NonceOutcome, AuditRecord | None]:
        """``spend`` awaited on the event loop (the verifier's hot path)."""
        checked = self._check(nonce, binding=binding, now=now)
        if isinstance(checked, NonceOutcome):
            return checked, None
        # (3) as in ``spend``
        return await self._store.spend_nonce_async(
            nonce, binding=binding, expires_at=checked, now=now, audit=audit
        )


def purge_spent_nonces(store: Store, *, now: int) -> int:
    """Delete spent nonces that can no longer be presented; ``serve`` runs this on a timer."""
    return store.purge_nonces(before=now - PURGE_MARGIN_S)
