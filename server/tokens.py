"""Access tokens: JWTs signed ES256 by the verifier, keys published as JWKS.

Signing keys live in ``<data-dir>/keys`` (one PEM each, plus ``keys.json`` naming the active
one); replicas share that directory. Rotation adds a key and makes it active; older keys stay
in the JWKS until every token they signed has expired.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attest.b64 import b64url_encode
from attest.errors import FormatError, VerificationError
from attest.jose import (
    ECDSA_SHA256,
    ES256,
    canonical_json,
    check_es256_header,
    der_to_raw,
    parse_compact,
    sign_encoded,
    verify_es256,
)
from attest.jwk import jwk_thumbprint, public_jwk
from attest.privatefile import ensure_private_dir, write_private_atomic
from attest.strictjson import parse_json_object
from server.errors import ConfigError

TOKEN_TYP = "at+jwt"  # noqa: S105 (a media type, not a secret)
BEARER = "bearer"
DPOP = "dpop"
MAX_VERIFIED_TOKENS = 50_000


def assurance(binding: str) -> dict[str, str]:
    """What the token's holder has proven and what is only reported or observed (DESIGN:
    what each party can prove); relying parties read it from the token or introspection."""
    return {
        "key_class": "proven-at-enrollment",
        "possession": "proven-per-request-dpop" if binding == DPOP else "not-proven-bearer",
        "environment": "self-reported-by-agent",
        "usage": "observed-by-verifier",
    }


@dataclass(frozen=True)
class SigningKey:
    """One token-signing key."""

    kid: str
    private_key: ec.EllipticCurvePrivateKey
    created_at: int
    retired_at: int | None = None

    @functools.cached_property
    def encoded_header(self) -> str:
        """The JWS header of every token this key signs, encoded once (``attest.jose``)."""
        header = {"alg": ES256, "kid": self.kid, "typ": TOKEN_TYP}
        return b64url_encode(canonical_json(header))

    def sign(self, data: bytes) -> bytes:
        """ES256, raw ``r||s``."""
        return der_to_raw(self.private_key.sign(data, ECDSA_SHA256))


@dataclass(frozen=True)
class IssuedToken:
    """A freshly signed access token and its identifiers."""

    token: str
    jti: str
    expires_in: int
    claims: dict[str, Any]


class KeyRing:
    """The verifier's signing keys: one active, others kept for verification."""

    def __init__(self, keys: list[SigningKey]) -> None:
        active = [k for k in keys if k.retired_at is None]
        if not active:
            raise ConfigError(
                "no active token-signing key: run 'envattest-server init' or 'keys rotate'"
            )
        self.keys = keys
        self.active = active[-1]
        # public keys built once per ring: deriving one from its private key is not free
        self._public = {k.kid: k.private_key.public_key() for k in keys}

    @classmethod
    def load(cls, directory: Path) -> KeyRing:
        """Load every key listed in ``keys.json``."""
        index = directory / "keys.json"
        try:
            entries = json.loads(index.read_text())
        except FileNotFoundError:
            raise ConfigError(
                f"{index} is missing: run 'envattest-server init --data-dir ...'"
            ) from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{index} is unreadable: {exc}") from exc
        keys = []
        for entry in entries:
            try:
                pem = (directory / f"{entry['kid']}.pem").read_bytes()
            except OSError as exc:
                raise ConfigError(f"signing key {entry['kid']} is unreadable: {exc}") from exc
            key = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ConfigError(f"signing key {entry['kid']} is not an EC key")
            keys.append(SigningKey(entry["kid"], key, entry["created_at"], entry.get("retired_at")))
        return cls(keys)

    @staticmethod
    def create_key(directory: Path, *, now: int) -> SigningKey:
        """Generate a key, store it, and make it the active one."""
        ensure_private_dir(directory)
        private = ec.generate_private_key(ec.SECP256R1())
        kid = jwk_thumbprint(private.public_key())
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_private_atomic(directory / f"{kid}.pem", pem)
        index = directory / "keys.json"
        entries = json.loads(index.read_text()) if index.exists() else []
        entries.append({"kid": kid, "created_at": now})
        write_private_atomic(index, json.dumps(entries, indent=2).encode())
        return SigningKey(kid, private, now)

    @staticmethod
    def rotate(directory: Path, *, now: int, max_token_ttl_s: int) -> RotatedKeys:
        """Retire the active key, make a new one active, and drop keys retired longer than
        ``max_token_ttl_s`` ago (no token they signed can still be valid)."""
        index = directory / "keys.json"
        entries: list[dict[str, Any]] = json.loads(index.read_text())
        kept, dropped = [], []
        for entry in entries:
            if entry.get("retired_at") is None:
                entry["retired_at"] = now
            if now - int(entry["retired_at"]) > max_token_ttl_s:
                dropped.append(str(entry["kid"]))
            else:
                kept.append(entry)
        write_private_atomic(index, json.dumps(kept, indent=2).encode())
        new = KeyRing.create_key(directory, now=now)
        for kid in dropped:
            (directory / f"{kid}.pem").unlink(missing_ok=True)
        return RotatedKeys(
            active=new.kid, retired=tuple(str(e["kid"]) for e in kept), dropped=tuple(dropped)
        )

    def jwks(self) -> dict[str, Any]:
        """Public keys for relying parties."""
        return {
            "keys": [
                {
                    **public_jwk(k.private_key.public_key()),
                    "kid": k.kid,
                    "use": "sig",
                    "alg": "ES256",
                }
                for k in self.keys
            ]
        }

    def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        """The public key for ``kid``, if published."""
        return self._public.get(kid)


@dataclass(frozen=True)
class RotatedKeys:
    """What ``keys rotate`` did."""

    active: str
    retired: tuple[str, ...]
    dropped: tuple[str, ...]


class KeyRingFile:
    """The key ring in a directory, re-read when ``keys.json`` changes (rotation by another
    process or replica). Checks the file's stat at most every ``check_interval_s``."""

    def __init__(
        self,
        directory: Path,
        *,
        check_interval_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self._interval = check_interval_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._ring = KeyRing.load(directory)
        self._checked = monotonic()

    def _stat(self) -> tuple[int, int]:
        try:
            st = os.stat(self.directory / "keys.json")
        except OSError:
            return (0, 0)
        return (st.st_mtime_ns, st.st_ino)

    def reload(self) -> KeyRing:
        """Re-read now (SIGHUP); on error keep the ring in force and raise."""
        with self._lock:
            stamp = self._stat()
            self._ring = KeyRing.load(self.directory)
            self._stamp = stamp
            return self._ring

    def __call__(self) -> KeyRing:
        """The current ring, reloaded if keys.json changed since the last look."""
        now = self._monotonic()
        if now - self._checked < self._interval:
            return self._ring
        self._checked = now
        if self._stat() != self._stamp:
            try:
                return self.reload()
            except ConfigError:
                return self._ring  # half-written rotation: try again at the next check
        return self._ring


class TokenIssuer:
    """Signs access tokens with the active key and verifies them with any published key."""

    def __init__(
        self,
        ring: KeyRing | Callable[[], KeyRing],
        *,
        issuer: str,
        clock: Any = time.time,
    ) -> None:
        self._ring_source: Callable[[], KeyRing] = (
            (lambda: ring) if isinstance(ring, KeyRing) else ring
        )
        self.issuer = issuer
        self._clock = clock
        self._verified = VerifiedTokens()

    @property
    def ring(self) -> KeyRing:
        """The key ring in force."""
        return self._ring_source()

    def issue(
        self,
        *,
        device_id: str,
        jkt: str,
        key_class: str,
        audience: str,
        ttl_s: int,
        policy_version: str,
        jti: str | None = None,
        binding: str = BEARER,
    ) -> IssuedToken:
        """A signed JWT with the DESIGN claims; ``binding`` ``dpop`` makes every use need a
        proof by the key ``cnf.jkt`` names (RFC 9449)."""
        now = int(self._clock())
        claims = {
            "iss": self.issuer,
            "sub": device_id,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_s,
            "jti": jti or new_jti(),
            "cnf": {"jkt": jkt},
            "key_class": key_class,
            "policy_version": policy_version,
            "binding": binding,
            "assurance": assurance(binding),
        }
        key = self.ring.active
        # any JSON serves a JWT's payload (the signature covers the bytes sent): orjson, fast
        token = sign_encoded(key.encoded_header, orjson.dumps(claims), key.sign)
        return IssuedToken(token=token, jti=str(claims["jti"]), expires_in=ttl_s, claims=claims)

    def verify(self, token: str, *, audience: str | None = None) -> dict[str, Any]:
        """The claims of a token this verifier issued, checked now; raises ``AttestError``
        (``FormatError``, ``AlgorithmError``, ``SignatureError``, ``VerificationError``).

        The signature check of a token string is remembered (``VerifiedTokens``): it is a pure
        function of the bytes and the published key, and a coding tool presents one token on
        every request until it expires. The key's publication, the time and the audience
        are checked again on every call.
        """
        ring = self.ring
        now = self._clock()
        verified = self._verified.get(token)
        if verified is None:
            verified = self._verify_signed(token, ring)
            self._verified.remember(token, verified, now=now)
        kid, claims = verified
        # (5) the key is still published (a dropped key takes its tokens with it)
        if ring.public_key(kid) is None:
            raise VerificationError("the token was signed by a key that is no longer published")
        # (6) in force now: exp in the future, iat and nbf not (RFC 7519 4.1.4-4.1.6, no leeway)
        if claims["exp"] <= now:
            raise VerificationError("the token has expired")
        if claims["iat"] > now or claims.get("nbf", 0) > now:
            raise VerificationError("the token is not valid yet")
        # (7) the audience, when the caller requires one (RFC 7519 4.1.3)
        if audience is not None:
            aud = claims.get("aud")
            audiences = [aud] if isinstance(aud, str) else aud
            if not isinstance(audiences, list) or audience not in audiences:
                raise VerificationError("the token is not for this audience")
        return dict(claims)

    def _verify_signed(self, token: str, ring: KeyRing) -> tuple[str, dict[str, Any]]:
        # (1) a compact JWS, ES256 only, typ at+jwt (RFC 9068 section 4), a published kid
        jws = parse_compact(token)
        kid = check_es256_header(jws.header, expected_typ=TOKEN_TYP)
        key = ring.public_key(kid)
        if key is None:
            raise VerificationError("the token's kid is not a published key")
        # (2) the signature over the exact signed bytes
        verify_es256(jws, expected_key=key)
        # (3) the claims: bounded JSON object, duplicates refused, required members typed
        claims = parse_json_object(jws.payload, what="token claims")
        for name in ("exp", "iat"):
            if not _is_int(claims.get(name)):
                raise FormatError(f"the token needs an integer {name!r} claim")
        if "nbf" in claims and not _is_int(claims["nbf"]):
            raise FormatError("the token's 'nbf' claim must be an integer")
        for name in ("sub", "jti", "iss"):
            if not isinstance(claims.get(name), str):
                raise FormatError(f"the token needs a string {name!r} claim")
        # (4) issued by this verifier
        if claims["iss"] != self.issuer:
            raise VerificationError("the token was issued by another verifier")
        return kid, claims


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class VerifiedTokens:
    """Token strings whose signature and claims structure passed, until they expire.

    Only tokens that passed are kept, so a flood of forged tokens cannot fill it; at
    ``max_tokens`` the expired ones go, and if none has, all of them.
    """

    def __init__(self, *, max_tokens: int = MAX_VERIFIED_TOKENS) -> None:
        self._max = max_tokens
        self._tokens: dict[str, tuple[str, dict[str, Any]]] = {}

    def get(self, token: str) -> tuple[str, dict[str, Any]] | None:
        """``(kid, claims)`` of a token that passed, or None."""
        return self._tokens.get(token)

    def remember(self, token: str, verified: tuple[str, dict[str, Any]], *, now: float) -> None:
        """Keep a token that passed steps (1)-(4) of ``TokenIssuer.verify``."""
        if len(self._tokens) >= self._max:
            live = {t: v for t, v in self._tokens.items() if v[1]["exp"] > now}
            self._tokens = live if len(live) < self._max // 2 else {}
        self._tokens[token] = verified


def token_type(claims: dict[str, Any]) -> str:
    """``DPoP`` for a token bound to proofs by the device key, else ``Bearer`` (RFC 9449 5)."""
    return "DPoP" if claims.get("binding") == DPOP else "Bearer"


def new_jti() -> str:
    """A random token id."""
    return secrets.token_urlsafe(16)
