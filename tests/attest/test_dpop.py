"""DPoP proofs: one creator and one verifier; every check has a proof that fails without it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attest.b64 import b64url_decode, b64url_encode
from attest.dpop import (
    DpopNonceRequiredError,
    DpopProofError,
    access_token_hash,
    create_proof,
    normalize_htu,
    verify_proof,
)
from attest.jose import canonical_json, der_to_raw
from attest.jwk import jwk_thumbprint, load_public_jwk
from attest.keys.software import SoftwareKey

NOW = 1_800_000_000
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJkIn0.c2ln"
URL = "https://gw.example.test/v1/messages"


@pytest.fixture
def key(tmp_path: Path) -> SoftwareKey:
    return SoftwareKey.create(tmp_path / "k.pem")


def _jkt(key: SoftwareKey) -> str:
    return jwk_thumbprint(load_public_jwk(key.public_jwk()))


def _proof(key: SoftwareKey, **overrides: Any) -> str:
    kwargs: dict[str, Any] = {
        "signer": key.sign,
        "public_jwk": key.public_jwk(),
        "htm": "POST",
        "htu": URL,
        "access_token": TOKEN,
        "now": lambda: NOW,
    }
    kwargs.update(overrides)
    return create_proof(**kwargs)


def _verify(proof: str, key: SoftwareKey, **overrides: Any) -> Any:
    kwargs: dict[str, Any] = {
        "expected_htm": "POST",
        "expected_htu": URL,
        "expected_jkt": _jkt(key),
        "access_token": TOKEN,
        "now": NOW,
    }
    kwargs.update(overrides)
    return verify_proof(proof, **kwargs)


def _forge(
    key: SoftwareKey,
    *,
    header: Callable[[dict[str, Any]], None] = lambda h: None,
    claims: Callable[[dict[str, Any]], None] = lambda c: None,
    signer: Callable[[bytes], bytes] | None = None,
) -> str:
    """A proof built by hand, so a test can change what create_proof never would."""
    h: dict[str, Any] = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()}
    c: dict[str, Any] = {
        "jti": "j1",
        "htm": "POST",
        "htu": URL,
        "iat": NOW,
        "ath": access_token_hash(TOKEN),
    }
    header(h)
    claims(c)
    signing_input = b64url_encode(canonical_json(h)) + "." + b64url_encode(canonical_json(c))
    signature = (signer or key.sign)(signing_input.encode())
    return signing_input + "." + b64url_encode(signature)


def test_created_proof_verifies_and_reports_its_binding(key: SoftwareKey) -> None:
    verified = _verify(_proof(key), key)
    assert verified.jkt == _jkt(key)
    assert verified.htm == "POST"
    assert verified.htu == URL
    assert verified.iat == NOW
    assert verified.nonce is None
    assert len(b64url_decode(verified.jti)) == 16


def test_each_proof_has_a_fresh_jti(key: SoftwareKey) -> None:
    assert _verify(_proof(key), key).jti != _verify(_proof(key), key).jti


def test_proof_header_carries_public_key_only(key: SoftwareKey) -> None:
    header = json.loads(b64url_decode(_proof(key).split(".")[0]))
    assert header["typ"] == "dpop+jwt"
    assert set(header["jwk"]) == {"crv", "kty", "x", "y"}


def test_query_is_not_part_of_htu(key: SoftwareKey) -> None:
    _verify(_proof(key, htu=URL + "?beta=1"), key, expected_htu=URL + "?x=2#f")


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("HTTPS://GW.Example.TEST:443/a?q", "https://gw.example.test/a"),
        ("http://h:80", "http://h/"),
        ("http://h:8080/p", "http://h:8080/p"),
        ("https://[::1]:8443/p", "https://[::1]:8443/p"),
    ],
)
def test_normalize_htu(raw: str, normal: str) -> None:
    assert normalize_htu(raw) == normal


@pytest.mark.parametrize("bad", ["ftp://h/", "/relative", "https://u:p@h/", "https://h:99999/"])
def test_normalize_htu_refuses_non_http_urls(bad: str) -> None:
    with pytest.raises(Exception, match="htu"):
        normalize_htu(bad)


def _other_signer(tmp_path: Path) -> Callable[[bytes], bytes]:
    return SoftwareKey.create(tmp_path / "o.pem").sign


@pytest.mark.parametrize(
    ("case", "step", "match"),
    [
        ("typ-jwt", "dpop.typ", "typ"),
        ("typ-missing", "dpop.typ", "typ"),
        ("alg-none", "dpop.alg", "ES256"),
        ("alg-hs256", "dpop.alg", "ES256"),
        ("header-extra-kid", "dpop.header", "unsupported"),
        ("jwk-private", "dpop.jwk", "private"),
        ("jwk-rsa", "dpop.jwk", "P-256"),
        ("jwk-missing", "dpop.jwk", "JSON object"),
        ("signature-other-key", "dpop.signature", "signature"),
        ("jti-missing", "dpop.jti", "jti"),
        ("jti-long", "dpop.jti", "too long"),
        ("htm-missing", "dpop.htm", "htm"),
        ("htu-missing", "dpop.htu", "htu"),
        ("iat-string", "dpop.iat", "integer"),
        ("iat-bool", "dpop.iat", "integer"),
        ("ath-missing", "dpop.ath", "ath"),
        ("ath-other-token", "dpop.ath", "another access token"),
        ("claims-array", "dpop.format", "JSON object"),
    ],
)
def test_forged_proof_is_refused_at_its_step(
    key: SoftwareKey, tmp_path: Path, case: str, step: str, match: str
) -> None:
    def header(h: dict[str, Any]) -> None:
        if case == "typ-jwt":
            h["typ"] = "JWT"
        elif case == "typ-missing":
            del h["typ"]
        elif case == "alg-none":
            h["alg"] = "none"
        elif case == "alg-hs256":
            h["alg"] = "HS256"
        elif case == "header-extra-kid":
            h["kid"] = "k"
        elif case == "jwk-private":
            h["jwk"] = {**h["jwk"], "d": "AAAA"}
        elif case == "jwk-rsa":
            h["jwk"] = {"kty": "RSA", "n": "AQAB", "e": "AQAB"}
        elif case == "jwk-missing":
            del h["jwk"]

    def claims(c: dict[str, Any]) -> None:
        name = case.split("-")[0]
        if case.endswith("-missing") and name in c:
            del c[name]
        elif case == "jti-long":
            c["jti"] = "j" * 129
        elif case == "iat-string":
            c["iat"] = str(NOW)
        elif case == "iat-bool":
            c["iat"] = True
        elif case == "ath-other-token":
            c["ath"] = access_token_hash(TOKEN + "x")

    signer = _other_signer(tmp_path) if case == "signature-other-key" else None
    proof = _forge(key, header=header, claims=claims, signer=signer)
    if case == "claims-array":
        h, _, _ = proof.split(".")
        body = b64url_encode(b"[1]")
        proof = f"{h}.{body}.{b64url_encode(key.sign(f'{h}.{body}'.encode()))}"
    with pytest.raises(DpopProofError, match=match) as info:
        _verify(proof, key)
    assert info.value.step == step


def test_proof_by_another_key_is_refused_by_thumbprint(key: SoftwareKey, tmp_path: Path) -> None:
    other = SoftwareKey.create(tmp_path / "o.pem")
    with pytest.raises(DpopProofError, match="not bound") as info:
        _verify(_proof(other), key)
    assert info.value.step == "dpop.jkt"


def test_proof_for_another_method_is_refused(key: SoftwareKey) -> None:
    with pytest.raises(DpopProofError, match="another HTTP method") as info:
        _verify(_proof(key, htm="GET"), key)
    assert info.value.step == "dpop.htm"


@pytest.mark.parametrize(
    "other",
    [
        "https://gw.example.test/v1/other",
        "http://gw.example.test/v1/messages",
        "https://evil.example.test/v1/messages",
        "https://gw.example.test:8443/v1/messages",
    ],
)
def test_proof_for_another_url_is_refused(key: SoftwareKey, other: str) -> None:
    with pytest.raises(DpopProofError, match="another URL") as info:
        _verify(_proof(key, htu=other), key)
    assert info.value.step == "dpop.htu"


@pytest.mark.parametrize("iat", [NOW - 61, NOW + 6])
def test_proof_outside_the_iat_window_is_refused(key: SoftwareKey, iat: int) -> None:
    with pytest.raises(DpopProofError, match="window") as info:
        _verify(_proof(key, now=lambda: iat), key)
    assert info.value.step == "dpop.iat"


@pytest.mark.parametrize("iat", [NOW - 60, NOW + 5])
def test_iat_window_edges_are_accepted(key: SoftwareKey, iat: int) -> None:
    _verify(_proof(key, now=lambda: iat), key)


def test_proof_for_another_token_is_refused(key: SoftwareKey) -> None:
    with pytest.raises(DpopProofError, match="another access token") as info:
        _verify(_proof(key, access_token="other"), key)
    assert info.value.step == "dpop.ath"


def test_proof_without_token_needs_no_ath(key: SoftwareKey) -> None:
    _verify(_proof(key, access_token=None), key, access_token=None)


def test_server_nonce_is_required_when_asked(key: SoftwareKey) -> None:
    with pytest.raises(DpopNonceRequiredError) as info:
        _verify(_proof(key), key, accepted_nonces={"n1"})
    assert info.value.step == "dpop.nonce"
    with pytest.raises(DpopNonceRequiredError):
        _verify(_proof(key, nonce="stale"), key, accepted_nonces={"n1"})
    assert _verify(_proof(key, nonce="n1"), key, accepted_nonces={"n1"}).nonce == "n1"


def test_oversized_and_malformed_proofs_are_format_errors(key: SoftwareKey) -> None:
    for proof in ["x" * 5000, "a.b", "!!.!!.!!", ""]:
        with pytest.raises(DpopProofError) as info:
            _verify(proof, key)
        assert info.value.step == "dpop.format"


def test_duplicate_claims_are_refused(key: SoftwareKey) -> None:
    h = b64url_encode(canonical_json({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()}))
    body = b64url_encode(
        b'{"jti":"a","jti":"b","htm":"POST","htu":"%s","iat":%d}' % (URL.encode(), NOW)
    )
    proof = f"{h}.{body}.{b64url_encode(key.sign(f'{h}.{body}'.encode()))}"
    with pytest.raises(DpopProofError, match="JSON object") as info:
        _verify(proof, key, access_token=None)
    assert info.value.step == "dpop.format"


def test_signing_through_a_callable_accepts_der_converting_signers(tmp_path: Path) -> None:
    """Hardware providers return DER that the provider converts; any r||s callable works."""
    from cryptography.hazmat.primitives import hashes

    private = ec.generate_private_key(ec.SECP256R1())
    software = SoftwareKey(private)

    def hardware_like(data: bytes) -> bytes:
        return der_to_raw(private.sign(data, ec.ECDSA(hashes.SHA256())))

    proof = _proof(software, signer=hardware_like)
    assert _verify(proof, software).jkt == _jkt(software)
