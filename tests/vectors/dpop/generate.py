"""Regenerate the DPoP proof vectors in this directory (one ``<case>.json`` each).

Usage::

    .venv/bin/python tests/vectors/dpop/generate.py

Each case is a proof and the request it is presented for, signed with throwaway keys; the
verifier-only test (tests/attest/test_dpop_vectors.py) replays them with a fixed clock and
expects the named refusal step (or acceptance for ``accept-*``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from attest.b64 import b64url_encode  # noqa: E402
from attest.dpop import access_token_hash  # noqa: E402
from attest.jose import canonical_json, der_to_raw  # noqa: E402
from attest.jwk import jwk_thumbprint, public_jwk  # noqa: E402

NOW = 1_800_000_000
TOKEN = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJkZXZfdmVjdG9yIn0.c2lnbmF0dXJl"
HTU = "https://llm-gateway.example.test/v1/messages"


def _signer(key: ec.EllipticCurvePrivateKey) -> Callable[[bytes], bytes]:
    return lambda data: der_to_raw(key.sign(data, ec.ECDSA(hashes.SHA256())))


def _proof(
    header: dict[str, Any], claims: dict[str, Any] | bytes, sign: Callable[[bytes], bytes]
) -> str:
    body = claims if isinstance(claims, bytes) else canonical_json(claims)
    signing_input = b64url_encode(canonical_json(header)) + "." + b64url_encode(body)
    return signing_input + "." + b64url_encode(sign(signing_input.encode()))


def cases() -> dict[str, dict[str, Any]]:
    """Every case: the proof, the expected request and the step that must refuse it."""
    device = ec.generate_private_key(ec.SECP256R1())
    thief = ec.generate_private_key(ec.SECP256R1())
    jwk = public_jwk(device.public_key())
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}
    claims = {"jti": "v-1", "htm": "POST", "htu": HTU, "iat": NOW, "ath": access_token_hash(TOKEN)}
    sign = _signer(device)
    thief_jwk = public_jwk(thief.public_key())
    table: dict[str, tuple[str, str | None, str]] = {
        "accept-valid": (_proof(header, claims, sign), None, "a proof for this request"),
        "accept-query-ignored": (
            _proof(header, {**claims, "htu": HTU + "?beta=true"}, sign),
            None,
            "htu is compared without its query (RFC 9449 4.3)",
        ),
        "refuse-typ-jwt": (
            _proof({**header, "typ": "JWT"}, claims, sign),
            "dpop.typ",
            "an ordinary JWT",
        ),
        "refuse-alg-none": (
            _proof({**header, "alg": "none"}, claims, lambda _data: b"\0" * 64),
            "dpop.alg",
            "alg none",
        ),
        "refuse-alg-hs256": (_proof({**header, "alg": "HS256"}, claims, sign), "dpop.alg", "HMAC"),
        "refuse-header-jku": (
            _proof({**header, "jku": "https://evil.example/jwks"}, claims, sign),
            "dpop.header",
            "a key URL instead of the embedded key",
        ),
        "refuse-jwk-private": (
            _proof({**header, "jwk": {**jwk, "d": "AAAA"}}, claims, sign),
            "dpop.jwk",
            "a private key in the header",
        ),
        "refuse-jwk-p384": (
            _proof({**header, "jwk": {**jwk, "crv": "P-384"}}, claims, sign),
            "dpop.jwk",
            "another curve",
        ),
        "refuse-signature-by-another-key": (
            _proof(header, claims, _signer(thief)),
            "dpop.signature",
            "the device's jwk, signed by someone else",
        ),
        "refuse-thief-key": (
            _proof({**header, "jwk": thief_jwk}, claims, _signer(thief)),
            "dpop.jkt",
            "a stolen token used with the thief's own key",
        ),
        "refuse-htm": (
            _proof(header, {**claims, "htm": "GET"}, sign),
            "dpop.htm",
            "another method",
        ),
        "refuse-htu-path": (
            _proof(header, {**claims, "htu": HTU.replace("messages", "files")}, sign),
            "dpop.htu",
            "another path",
        ),
        "refuse-htu-host": (
            _proof(header, {**claims, "htu": HTU.replace("llm-gateway", "relay")}, sign),
            "dpop.htu",
            "another host",
        ),
        "refuse-iat-stale": (
            _proof(header, {**claims, "iat": NOW - 61}, sign),
            "dpop.iat",
            "too old",
        ),
        "refuse-iat-future": (
            _proof(header, {**claims, "iat": NOW + 6}, sign),
            "dpop.iat",
            "from the future",
        ),
        "refuse-ath-missing": (
            _proof(header, {k: v for k, v in claims.items() if k != "ath"}, sign),
            "dpop.ath",
            "not bound to the token",
        ),
        "refuse-ath-other-token": (
            _proof(header, {**claims, "ath": access_token_hash(TOKEN + "x")}, sign),
            "dpop.ath",
            "bound to another token",
        ),
        "refuse-jti-missing": (
            _proof(header, {k: v for k, v in claims.items() if k != "jti"}, sign),
            "dpop.jti",
            "no proof id, so no replay check",
        ),
        "refuse-duplicate-claim": (
            _proof(header, canonical_json(claims)[:-1] + b',"htm":"GET"}', sign),
            "dpop.format",
            "a duplicated claim parsers disagree on",
        ),
    }
    jkt = jwk_thumbprint(device.public_key())
    return {
        name: {
            "description": description,
            "proof": proof,
            "expected_step": step,
            "now": NOW,
            "htm": "POST",
            "htu": HTU,
            "jkt": jkt,
            "access_token": TOKEN,
        }
        for name, (proof, step, description) in table.items()
    }


def main() -> int:
    """Write every case file; print their names."""
    for name, case in cases().items():
        (HERE / f"{name}.json").write_text(json.dumps(case, indent=2, sort_keys=True) + "\n")
        print(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
