"""Evidence parsing and verification: every check of ``attest.evidence`` has a refusing case."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from attest import EAT_PROFILE, SWNAME, __version__
from attest.b64 import b64url_encode
from attest.errors import AlgorithmError, FormatError, SignatureError
from attest.evidence import (
    MAX_EVIDENCE_BYTES,
    ConsentClaim,
    new_claims,
    parse_evidence,
    sign_evidence,
    verify_evidence_signature,
)
from attest.jose import canonical_json, sign_compact
from attest.jwk import load_public_jwk
from attest.keys.software import SoftwareKey

SHA = "a" * 64


@pytest.fixture
def key(tmp_path: Path) -> SoftwareKey:
    return SoftwareKey.create(tmp_path / "k.pem")


def claims(**overrides: Any) -> dict[str, Any]:
    doc = new_claims(
        nonce="n0nce",
        device_id="dev_a",
        consent=ConsentClaim(SHA, 7, ("timezone.iana",)),  # type: ignore[arg-type]
        signals={"timezone.iana": "Etc/UTC"},
        now=1000,
    ).to_json()
    doc.update(overrides)
    return doc


def signed(key: SoftwareKey, doc: dict[str, Any], **header: Any) -> bytes:
    head = {"alg": "ES256", "typ": "eat+jwt", "kid": doc.get("sub", "dev_a"), **header}
    return sign_compact(head, json.dumps(doc).encode(), key.sign).encode()


def test_roundtrip_keeps_every_claim(key: SoftwareKey) -> None:
    made = new_claims(
        nonce="n0nce",
        device_id="dev_a",
        consent=ConsentClaim(SHA, 7, ("timezone.iana",)),  # type: ignore[arg-type]
        signals={"timezone.iana": "Etc/UTC"},
        now=1000,
    )
    token = sign_evidence(made, key.sign)
    evidence = parse_evidence(token.encode())
    assert evidence.kid == "dev_a"
    assert evidence.claims == made
    assert (made.profile, made.swname, made.swversion) == (EAT_PROFILE, SWNAME, __version__)
    verified = verify_evidence_signature(evidence, expected_key=load_public_jwk(key.public_jwk()))
    assert verified.claims == made
    assert verified.kid == "dev_a"
    assert evidence.jws.signing_input == token.rsplit(".", 1)[0].encode()
    assert evidence.jws.payload == canonical_json(made.to_json())  # the one signed serialization


def test_surrounding_whitespace_is_tolerated(key: SoftwareKey) -> None:
    assert parse_evidence(b"  " + signed(key, claims()) + b"\n").kid == "dev_a"


def test_signature_by_another_key_is_refused(key: SoftwareKey, tmp_path: Path) -> None:
    other = SoftwareKey.create(tmp_path / "o.pem")
    evidence = parse_evidence(signed(other, claims()))
    with pytest.raises(SignatureError):
        verify_evidence_signature(evidence, expected_key=load_public_jwk(key.public_jwk()))


def test_claims_outside_the_catalog_cannot_be_built() -> None:
    with pytest.raises(Exception, match="not a catalog field"):
        new_claims(
            nonce="n", device_id="d", consent=ConsentClaim(SHA, 1, ()), signals={"x": 1}, now=1
        )


def test_size_limit(key: SoftwareKey) -> None:
    assert len(signed(key, claims())) < MAX_EVIDENCE_BYTES
    with pytest.raises(FormatError, match="larger than 64 KiB"):
        parse_evidence(b"a" * (MAX_EVIDENCE_BYTES + 1))
    padded = claims(signals={f"f{i}": "x" * 8000 for i in range(5)})
    token = signed(key, padded)
    assert len(token) < MAX_EVIDENCE_BYTES
    parse_evidence(token)  # under the bound: parses (signals are checked later)


def test_size_limit_is_exact(key: SoftwareKey) -> None:
    token = signed(key, claims())
    at_limit = token + b" " * (MAX_EVIDENCE_BYTES - len(token))  # whitespace is stripped later
    assert len(at_limit) == MAX_EVIDENCE_BYTES
    assert parse_evidence(at_limit).kid == "dev_a"
    with pytest.raises(FormatError, match="larger than 64 KiB"):
        parse_evidence(at_limit + b" ")


def test_non_ascii_is_refused() -> None:
    with pytest.raises(FormatError, match="ASCII"):
        parse_evidence("é.b.c".encode())


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"extra": 1}, "unknown claims: extra"),
        ({"eat_profile": "tag:example.com,2026:x"}, "eat_profile must be"),
        ({"eat_nonce": ""}, "claim eat_nonce"),
        ({"eat_nonce": "n" * 129}, "claim eat_nonce"),
        ({"eat_nonce": 5}, "claim eat_nonce"),
        ({"swname": "x" * 257}, "claim swname"),
        ({"swversion": None}, "claim swversion"),
        ({"iat": True}, "claim iat"),
        ({"iat": -1}, "claim iat"),
        ({"iat": 2**42}, "claim iat"),
        ({"iat": 1.5}, "claim iat"),
        ({"signals": []}, "claim signals"),
        ({"consent": []}, "claim consent"),
        ({"consent": {"manifest_sha256": "A" * 64, "granted_at": 1, "fields": []}}, "lowercase"),
        ({"consent": {"manifest_sha256": SHA + "a", "granted_at": 1, "fields": []}}, "lowercase"),
        ({"consent": {"manifest_sha256": SHA, "granted_at": 1, "fields": "x"}}, "consent.fields"),
        ({"consent": {"manifest_sha256": SHA, "granted_at": 1, "fields": [1]}}, "consent.fields"),
        ({"consent": {"manifest_sha256": SHA, "granted_at": -1, "fields": []}}, "granted_at"),
    ],
)
def test_malformed_claims_are_refused(
    key: SoftwareKey, override: dict[str, Any], match: str
) -> None:
    with pytest.raises(FormatError, match=match):
        parse_evidence(signed(key, claims(**override)))


def test_edge_values_are_accepted(key: SoftwareKey) -> None:
    doc = claims(eat_nonce="n" * 128, iat=2**42 - 1, swname="s" * 256)
    parsed = parse_evidence(signed(key, doc)).claims
    assert (parsed.nonce, parsed.iat, parsed.swname) == ("n" * 128, 2**42 - 1, "s" * 256)
    assert parse_evidence(signed(key, claims(iat=0))).claims.iat == 0


def test_missing_claims_are_refused(key: SoftwareKey) -> None:
    for name in ("eat_nonce", "iat", "sub", "eat_profile", "swname", "swversion", "consent"):
        doc = claims()
        del doc[name]
        with pytest.raises(FormatError):
            parse_evidence(signed(key, doc, kid="dev_a"))


def test_kid_and_sub_must_name_the_same_device(key: SoftwareKey) -> None:
    with pytest.raises(FormatError, match="kid and sub"):
        parse_evidence(signed(key, claims(), kid="dev_b"))


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"not json", "^evidence payload: .*not JSON"),
        (b"[1]", "^evidence payload: must be a JSON object"),
        (b"\xff", "^evidence payload: .*JSON"),
    ],
)
def test_payload_must_be_a_json_object(key: SoftwareKey, payload: bytes, match: str) -> None:
    token = sign_compact({"alg": "ES256", "typ": "eat+jwt", "kid": "d"}, payload, key.sign)
    with pytest.raises(FormatError, match=match):
        parse_evidence(token.encode())


def test_header_checks_come_first(key: SoftwareKey) -> None:
    with pytest.raises(FormatError, match="typ"):
        parse_evidence(signed(key, claims(), typ="JWT"))
    with pytest.raises(FormatError, match="header members"):
        parse_evidence(signed(key, claims(), jwk={"kty": "EC"}))
    header = {"alg": "HS256", "typ": "eat+jwt", "kid": "dev_a"}
    body = b64url_encode(json.dumps(header).encode()) + "." + b64url_encode(b"{}") + ".AA"
    with pytest.raises(AlgorithmError):
        parse_evidence(body.encode())
