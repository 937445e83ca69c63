"""DPoP proofs (RFC 9449): one implementation for the agent that signs and the verifier that checks.

A proof is a compact JWS with ``typ: dpop+jwt``, ES256, and the signer's public key in the
``jwk`` header. It binds one HTTP request (``htm``, ``htu``) at one time (``iat``) to the access
token (``ath``) and, through the key's RFC 7638 thumbprint, to the token's ``cnf.jkt``.
Signing takes a callable, as in :mod:`attest.jose`, so a TPM-held key can sign without ever
leaving the TPM. Verification is pure: the caller spends the returned ``jti`` in its replay
store, because only the caller knows which store is shared across its replicas.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cryptography.hazmat.primitives.asymmetric import ec

from attest.b64 import b64url_encode
from attest.errors import AttestError, FormatError, VerificationError
from attest.jose import ES256, Signer, canonical_json, parse_compact, sign_encoded, verify_es256
from attest.jwk import jwk_thumbprint, load_public_jwk
from attest.strictjson import parse_json_object

DPOP_TYP = "dpop+jwt"
MAX_PROOF_CHARS = 4096
"""A proof carries one P-256 JWK and a few short claims; anything longer is not a proof."""
MAX_JTI_CHARS = 128
DEFAULT_MAX_AGE = 60
"""Seconds a proof stays acceptable after its ``iat`` (RFC 9449 section 11.1: keep it short)."""
DEFAULT_LEEWAY = 5
"""Seconds of clock difference tolerated for an ``iat`` in the future."""

_HEADER_MEMBERS = frozenset({"typ", "alg", "jwk"})
_DEFAULT_PORTS = {"https": 443, "http": 80}


class DpopProofError(VerificationError):
    """A DPoP proof fails a check; ``step`` names which one (for the audit record)."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


class DpopNonceRequiredError(DpopProofError):
    """The proof lacks the server's current nonce: answer ``use_dpop_nonce`` with a fresh one."""


@dataclass(frozen=True)
class VerifiedProof:
    """A proof that passed every check in :func:`verify_proof`."""

    jkt: str
    jti: str
    iat: int
    htm: str
    htu: str
    nonce: str | None


def access_token_hash(access_token: str) -> str:
    """``ath``: base64url SHA-256 of the token's ASCII bytes (RFC 9449 section 4.2)."""
    return b64url_encode(hashlib.sha256(access_token.encode()).digest())


@functools.lru_cache(maxsize=1024)
def normalize_htu(url: str) -> str:
    """The comparable form of an HTTP URI: no query or fragment, lower-case scheme and host,
    default port dropped (RFC 9449 section 4.3 step 9, RFC 3986 section 6.2.2/6.2.3)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FormatError(f"htu {url!r} is not a URL") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise FormatError(f"htu {url!r} must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise FormatError("htu must not carry credentials")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", "", ""))


def create_proof(
    *,
    signer: Signer,
    public_jwk: Mapping[str, str],
    htm: str,
    htu: str,
    access_token: str | None = None,
    nonce: str | None = None,
    now: Callable[[], float] = time.time,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> str:
    """Sign a proof for one request; ``access_token`` adds ``ath`` (required at resources)."""
    maker = ProofSigner(signer, public_jwk, now=now, random_bytes=random_bytes)
    return maker.proof(htm, htu, access_token, nonce)


_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


class ProofSigner:
    """Proofs by one key: the header with its public JWK is encoded once, the token's ``ath``
    once per token; each proof costs its claims and one ES256 signature."""

    def __init__(
        self,
        signer: Signer,
        public_jwk: Mapping[str, str],
        *,
        now: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        jwk = {name: public_jwk[name] for name in ("crv", "kty", "x", "y")}
        header = {"typ": DPOP_TYP, "alg": ES256, "jwk": jwk}
        self._encoded_header = b64url_encode(canonical_json(header))
        self._signer = signer
        self._now = now
        self._random = random_bytes
        self._ath: tuple[str, str] = ("", "")

    def proof(
        self, htm: str, htu: str, access_token: str | None = None, nonce: str | None = None
    ) -> str:
        """A signed proof for ``htm htu`` (the ``ProofFactory`` shape the agent's proxy uses)."""
        claims: dict[str, Any] = {
            "jti": b64url_encode(self._random(16)),
            "htm": htm.upper(),
            "htu": normalize_htu(htu),
            "iat": int(self._now()),
        }
        if access_token is not None:
            if self._ath[0] != access_token:
                self._ath = (access_token, access_token_hash(access_token))
            claims["ath"] = self._ath[1]
        if nonce is not None:
            claims["nonce"] = nonce
        return sign_encoded(
            self._encoded_header, _COMPACT_JSON.encode(claims).encode(), self._signer
        )


@functools.lru_cache(maxsize=1024)
def _public_key(x: str, y: str) -> tuple[ec.EllipticCurvePublicKey, str]:
    """A proof key and its RFC 7638 thumbprint. A pure function of the coordinates, memoized:
    one device signs every proof with the same key, and building the point is not free."""
    key = load_public_jwk({"kty": "EC", "crv": "P-256", "x": x, "y": y})
    return key, jwk_thumbprint(key)


def _proof_key(jwk: object) -> tuple[ec.EllipticCurvePublicKey, str]:
    """The header ``jwk`` as a public P-256 key and its thumbprint; only well-formed public
    coordinates reach the memo, anything else gets ``load_public_jwk``'s precise error."""
    if (
        isinstance(jwk, Mapping)
        and "d" not in jwk
        and jwk.get("kty") == "EC"
        and jwk.get("crv") == "P-256"
        and isinstance(jwk.get("x"), str)
        and isinstance(jwk.get("y"), str)
    ):
        return _public_key(jwk["x"], jwk["y"])
    load_public_jwk(jwk)
    raise FormatError("the jwk is not a public P-256 key")


def _claims(payload: bytes) -> dict[str, Any]:
    try:
        return parse_json_object(payload, what="DPoP proof claims")
    except FormatError as exc:
        raise DpopProofError("dpop.format", "DPoP proof claims are not a JSON object") from exc


def _string_claim(claims: Mapping[str, Any], name: str, step: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise DpopProofError(step, f"DPoP proof needs a string {name!r} claim")
    return value


def verify_proof(
    proof: str,
    *,
    expected_htm: str,
    expected_htu: str,
    expected_jkt: str | None,
    access_token: str | None,
    now: float,
    max_age: int = DEFAULT_MAX_AGE,
    leeway: int = DEFAULT_LEEWAY,
    accepted_nonces: Container[str] | None = None,
) -> VerifiedProof:
    """Check one proof against the request it must cover (RFC 9449 section 4.3), or raise.

    ``expected_jkt`` is the token's ``cnf.jkt`` (None only where no token exists yet);
    ``access_token`` makes ``ath`` mandatory; ``accepted_nonces`` makes ``nonce`` mandatory.
    """
    # (1) one well-formed compact JWS, bounded in size (section 4.3 steps 1-2)
    if len(proof) > MAX_PROOF_CHARS:
        raise DpopProofError("dpop.format", "DPoP proof is too long")
    try:
        jws = parse_compact(proof)
    except (AttestError, UnicodeError) as exc:
        raise DpopProofError("dpop.format", f"DPoP proof is not a compact JWS: {exc}") from exc
    header = jws.header
    # (2) typ dpop+jwt (step 4), alg ES256 only, never none or MAC (steps 5-6)
    if header.get("typ") != DPOP_TYP:
        raise DpopProofError("dpop.typ", f"DPoP proof typ must be {DPOP_TYP!r}")
    if header.get("alg") != ES256:
        raise DpopProofError("dpop.alg", "DPoP proof must be signed with ES256")
    if set(header) - _HEADER_MEMBERS:
        raise DpopProofError("dpop.header", "DPoP proof header has unsupported members")
    # (3) jwk: a public P-256 key, no private member (step 7)
    try:
        key, jkt = _proof_key(header.get("jwk"))
    except FormatError as exc:
        raise DpopProofError("dpop.jwk", f"DPoP proof jwk: {exc}") from exc
    # (4) the signature verifies with that key (step 8)
    try:
        verify_es256(jws, expected_key=key)
    except VerificationError as exc:
        raise DpopProofError("dpop.signature", "DPoP proof signature does not verify") from exc
    # (5) the key is the one the token is bound to: thumbprint == cnf.jkt (step 12)
    if expected_jkt is not None and not hmac.compare_digest(jkt, expected_jkt):
        raise DpopProofError("dpop.jkt", "DPoP proof is signed by a key the token is not bound to")
    claims = _claims(jws.payload)
    # (6) jti present and bounded (step 3; replay is the caller's store, step 11)
    jti = _string_claim(claims, "jti", "dpop.jti")
    if len(jti) > MAX_JTI_CHARS:
        raise DpopProofError("dpop.jti", "DPoP proof jti is too long")
    # (7) htm and htu match the request (steps 9-10)
    htm = _string_claim(claims, "htm", "dpop.htm")
    if htm != expected_htm.upper():
        raise DpopProofError("dpop.htm", "DPoP proof is for another HTTP method")
    htu = _string_claim(claims, "htu", "dpop.htu")
    try:
        matches = htu == expected_htu or normalize_htu(htu) == normalize_htu(expected_htu)
    except FormatError as exc:
        raise DpopProofError("dpop.htu", f"DPoP proof htu: {exc}") from exc
    if not matches:
        raise DpopProofError("dpop.htu", "DPoP proof is for another URL")
    # (8) iat within the window (step 11)
    iat = claims.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise DpopProofError("dpop.iat", "DPoP proof needs an integer iat")
    if iat < now - max_age or iat > now + leeway:
        raise DpopProofError("dpop.iat", "DPoP proof iat is outside the accepted window")
    # (9) ath binds the proof to this access token (step 12, section 4.2)
    if access_token is not None:
        ath = _string_claim(claims, "ath", "dpop.ath")
        if not hmac.compare_digest(ath, access_token_hash(access_token)):
            raise DpopProofError("dpop.ath", "DPoP proof is for another access token")
    # (10) server nonce, when the server asks for one (step 10, section 8)
    nonce = claims.get("nonce")
    if nonce is not None and not isinstance(nonce, str):
        raise DpopProofError("dpop.nonce", "DPoP proof nonce must be a string")
    if accepted_nonces is not None and (nonce is None or nonce not in accepted_nonces):
        raise DpopNonceRequiredError("dpop.nonce", "DPoP proof lacks the server's current nonce")
    return VerifiedProof(jkt=jkt, jti=jti, iat=iat, htm=htm, htu=htu, nonce=nonce)


__all__ = [
    "DPOP_TYP",
    "DpopNonceRequiredError",
    "DpopProofError",
    "VerifiedProof",
    "access_token_hash",
    "create_proof",
    "normalize_htu",
    "verify_proof",
]
