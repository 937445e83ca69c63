"""Signed checkpoints: the audit chain anchored by a key that is not in the database.

A checkpoint states "the chain had ``count`` records and its head hash was ``head_hash`` at
``at``", signed with Ed25519 by a file key (``<data-dir>/keys/audit-checkpoint.pem`` or the
path in ``audit_checkpoint_key``). Someone who can write the database but not read that key
can neither rewrite the records a checkpoint covers nor drop them without ``audit verify``
noticing; only the records after the newest checkpoint are unprotected, which is why
``serve`` writes one on a schedule.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from attest.privatefile import ensure_private_dir, write_private_atomic
from server.errors import ConfigError, ServerError

_CONTEXT = b"envattest audit checkpoint v1\n"


class CheckpointError(ServerError):
    """A checkpoint is missing, forged or altered."""


@dataclass(frozen=True)
class Checkpoint:
    """One signed statement about the chain's head."""

    count: int
    head_hash: str
    at: int
    key_id: str
    signature: str  # base64url, no padding

    def signed_bytes(self) -> bytes:
        """What the signature covers (everything but the signature)."""
        return _signing_input(self.count, self.head_hash, self.at, self.key_id)

    def to_json(self) -> dict[str, object]:
        """The form kept in the witness file and printed by the CLI."""
        return {
            "count": self.count,
            "head_hash": self.head_hash,
            "at": self.at,
            "key_id": self.key_id,
            "signature": self.signature,
        }


def checkpoint_from_json(doc: object) -> Checkpoint:
    """Parse the witness form; raise CheckpointError if it is not one."""
    if not isinstance(doc, dict):
        raise CheckpointError("checkpoint witness is not a JSON object")
    try:
        made = Checkpoint(
            count=doc["count"],
            head_hash=doc["head_hash"],
            at=doc["at"],
            key_id=doc["key_id"],
            signature=doc["signature"],
        )
    except KeyError as exc:
        raise CheckpointError(f"checkpoint witness lacks {exc}") from None
    if not (type(made.count) is int and type(made.at) is int):
        raise CheckpointError("checkpoint witness: count and at must be integers")
    if not (isinstance(made.head_hash, str) and isinstance(made.signature, str)):
        raise CheckpointError("checkpoint witness: head_hash and signature must be strings")
    return made


def _signing_input(count: int, head_hash: str, at: int, key_id: str) -> bytes:
    body = json.dumps(
        {"at": at, "count": count, "head_hash": head_hash, "key_id": key_id},
        separators=(",", ":"),
        sort_keys=True,
    )
    return _CONTEXT + body.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(public: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 over the raw public key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class CheckpointSigner:
    """The private checkpoint key, loaded from (or created in) its file."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id(self.public)

    @classmethod
    def load(cls, path: Path, *, create: bool = False) -> CheckpointSigner:
        """Read the key; with ``create``, make one (owner-only) if the file is missing."""
        if not path.exists() and create:
            ensure_private_dir(path.parent)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            write_private_atomic(path, pem)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except FileNotFoundError:
            raise ConfigError(
                f"no audit checkpoint key at {path}: 'envattest-server audit checkpoint' "
                "creates one, or set audit_checkpoint_key in server.toml"
            ) from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the audit checkpoint key {path}: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"{path} is not an Ed25519 private key")
        return cls(key)

    def sign(self, *, count: int, head_hash: str, at: int) -> Checkpoint:
        """A checkpoint of the chain's head."""
        signature = self._private.sign(_signing_input(count, head_hash, at, self.key_id))
        return Checkpoint(count, head_hash, at, self.key_id, _b64(signature))


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The checkpoint verification key from a public or private PEM."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"no audit checkpoint key at {path}: pass the auditor's copy with --public-key, or "
            "run 'envattest-server audit checkpoint' to create the key and a first checkpoint"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the checkpoint key {path}: {exc.strerror or exc}") from None
    try:
        if b"PRIVATE KEY" in data:
            private = serialization.load_pem_private_key(data, password=None)
            key: object = private.public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise ConfigError(f"{path} is not a PEM key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path} is not an Ed25519 key")
    return key


def public_key_pem(public: Ed25519PublicKey) -> str:
    """PEM of the verification key, to keep with an auditor."""
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def verify_checkpoint(checkpoint: Checkpoint, public: Ed25519PublicKey) -> None:
    """Raise CheckpointError unless ``public`` signed exactly this checkpoint."""
    if checkpoint.key_id != key_id(public):
        raise CheckpointError(
            f"checkpoint of {checkpoint.count} records at {checkpoint.at}: signed by key "
            f"{checkpoint.key_id}, not by the checkpoint key {key_id(public)}"
        )
    try:
        public.verify(_unb64(checkpoint.signature), checkpoint.signed_bytes())
    except (InvalidSignature, ValueError):
        raise CheckpointError(
            f"checkpoint of {checkpoint.count} records at {checkpoint.at}: signature does not "
            "verify (forged or altered)"
        ) from None


def read_witness(path: Path) -> Checkpoint | None:
    """The newest checkpoint this host wrote, kept outside the database; None if none."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        doc = json.loads(raw)
    except ValueError:
        raise CheckpointError(f"{path} is not JSON: restore it or remove it") from None
    return checkpoint_from_json(doc)


def write_witness(path: Path, checkpoint: Checkpoint) -> None:
    """Replace the witness atomically, unless it already records a longer chain."""
    current = read_witness(path) if path.exists() else None
    if current is not None and current.count > checkpoint.count:
        return
    write_private_atomic(path, json.dumps(checkpoint.to_json(), sort_keys=True).encode())
