"""Compact JWS: ES256 only, exact bytes, strict base64url."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attest.b64 import b64url_decode, b64url_encode
from attest.errors import AlgorithmError, FormatError, SignatureError
from attest.jose import check_es256_header, parse_compact, sign_compact, verify_es256
from attest.jwk import jwk_thumbprint, load_public_jwk, public_jwk
from attest.keys.software import SoftwareKey


@pytest.fixture
def key(tmp_path: Path) -> SoftwareKey:
    return SoftwareKey.create(tmp_path / "k.pem")


def test_sign_then_verify_roundtrip(key: SoftwareKey) -> None:
    token = sign_compact({"alg": "ES256", "typ": "eat+jwt", "kid": "d"}, b'{"a":1}', key.sign)
    jws = parse_compact(token)
    verify_es256(jws, expected_key=load_public_jwk(key.public_jwk()))
    assert jws.payload == b'{"a":1}'


def test_signature_by_another_key_fails(key: SoftwareKey, tmp_path: Path) -> None:
    other = SoftwareKey.create(tmp_path / "o.pem")
    token = sign_compact({"alg": "ES256", "typ": "eat+jwt", "kid": "d"}, b"{}", other.sign)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_es256(parse_compact(token), expected_key=load_public_jwk(key.public_jwk()))


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256", "ES384", "es256", None])
def test_only_es256_header_is_accepted(alg: str | None) -> None:
    with pytest.raises(AlgorithmError, match="only ES256"):
        check_es256_header({"alg": alg, "typ": "eat+jwt", "kid": "d"}, expected_typ="eat+jwt")


def test_key_file_is_owner_only(tmp_path: Path) -> None:
    SoftwareKey.create(tmp_path / "k.pem")
    assert (tmp_path / "k.pem").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("text", ["a+b", "ab==", "a b", "a"])
def test_base64url_is_strict(text: str) -> None:
    with pytest.raises(FormatError):
        b64url_decode(text)


def test_thumbprint_matches_rfc7638_example() -> None:
    # RFC 7638 section 3.1 uses RSA; for EC we check stability and member order instead.
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    }
    key = load_public_jwk(jwk)
    assert list(public_jwk(key)) == ["crv", "kty", "x", "y"]
    assert jwk_thumbprint(key) == "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U"


def test_private_jwk_is_refused() -> None:
    with pytest.raises(FormatError, match="private key member"):
        load_public_jwk({"kty": "EC", "crv": "P-256", "x": "", "y": "", "d": "x"})


def test_point_not_on_curve_is_refused() -> None:
    bad = {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url_encode(b"\x01" * 32),
        "y": b64url_encode(b"\x02" * 32),
    }
    with pytest.raises(FormatError, match="not a point"):
        load_public_jwk(bad)


def test_header_with_extra_members_is_refused() -> None:
    header = {"alg": "ES256", "typ": "eat+jwt", "kid": "d", "jku": "https://x"}
    with pytest.raises(FormatError, match="unsupported JWS header members: jku"):
        check_es256_header(header, expected_typ="eat+jwt")
    assert json.dumps(header)


def test_canonical_json_is_compact_sorted_utf8() -> None:
    from attest.jose import canonical_json

    assert canonical_json({"b": 1, "a": ["é", None]}) == '{"a":["é",null],"b":1}'.encode()


@pytest.mark.parametrize(("header", "match"), [(b"not json", "not JSON"), (b"[1]", "JSON object")])
def test_header_must_be_a_json_object_and_the_error_names_it(header: bytes, match: str) -> None:
    token = b64url_encode(header) + "." + b64url_encode(b"{}") + ".AA"
    with pytest.raises(FormatError, match=f"^JWS header: .*{match}"):
        parse_compact(token)
