"""``none`` key attestation: the key being enrolled signs the enrollment challenge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from attest.b64 import b64url_encode
from attest.errors import KeyAttestationError
from attest.jose import sign_compact
from attest.jwk import jwk_thumbprint, load_public_jwk
from attest.keyattest.none import MAX_PROOF_CHARS, PROOF_TYP, build_none_statement, verify_none
from attest.keys import KeyClass
from attest.keys.software import SoftwareKey

NONCE = bytes(range(32))


@pytest.fixture
def key(tmp_path: Path) -> SoftwareKey:
    return SoftwareKey.create(tmp_path / "k.pem")


@pytest.fixture
def other(tmp_path: Path) -> SoftwareKey:
    return SoftwareKey.create(tmp_path / "o.pem")


def proof(
    signer: SoftwareKey, *, kid_of: SoftwareKey | None = None, payload: Any = None, **header: Any
) -> dict[str, str]:
    kid = jwk_thumbprint(load_public_jwk((kid_of or signer).public_jwk()))
    head = {"alg": "ES256", "typ": PROOF_TYP, "kid": kid, **header}
    body = payload if payload is not None else {"eat_nonce": b64url_encode(NONCE)}
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return {"format": "none", "proof": sign_compact(head, raw, signer.sign)}


def check(statement: dict[str, Any], key: SoftwareKey, nonce: bytes = NONCE) -> Any:
    return verify_none(statement, expected_jwk=key.public_jwk(), expected_nonce=nonce)


def test_the_key_signing_the_challenge_is_accepted_as_software(key: SoftwareKey) -> None:
    statement = build_none_statement(nonce=NONCE, jwk=key.public_jwk(), signer=key.sign)
    assert set(statement) == set(key.attestation(NONCE)) == {"format", "proof"}
    verified = check(statement, key)
    assert verified.public_jwk == key.public_jwk()
    assert verified.key_class is KeyClass.SOFTWARE
    assert check(proof(key), key).key_class is KeyClass.SOFTWARE


def test_someone_elses_key_without_its_private_key(key: SoftwareKey, other: SoftwareKey) -> None:
    with pytest.raises(KeyAttestationError, match="names another key"):
        check(other.attestation(NONCE), key)
    with pytest.raises(KeyAttestationError, match="not signed by the key being enrolled"):
        check(proof(other, kid_of=key), key)


def test_another_challenge(key: SoftwareKey) -> None:
    with pytest.raises(KeyAttestationError, match="another challenge"):
        check(key.attestation(NONCE), key, nonce=bytes(32))


@pytest.mark.parametrize(
    "payload",
    [
        {"eat_nonce": b64url_encode(NONCE), "extra": 1},
        {"nonce": b64url_encode(NONCE)},
        {},
    ],
)
def test_the_payload_is_exactly_the_challenge(key: SoftwareKey, payload: Any) -> None:
    with pytest.raises(KeyAttestationError, match="another challenge"):
        check(proof(key, payload=payload), key)


@pytest.mark.parametrize("payload", [b"not json", b"\xff\xfe", b'["x"]', b'{"a":1,"a":2}'])
def test_a_payload_that_is_not_json(key: SoftwareKey, payload: bytes) -> None:
    with pytest.raises(KeyAttestationError, match="malformed"):
        check(proof(key, payload=payload), key)


def test_a_malformed_payload_is_named_in_the_error(key: SoftwareKey) -> None:
    with pytest.raises(KeyAttestationError, match="proof of possession payload"):
        check(proof(key, payload=b'["x"]'), key)


@pytest.mark.parametrize(
    ("header", "match"),
    [({"typ": "eat+jwt"}, "typ"), ({"jwk": {}}, "header members"), ({"kid": 5}, "kid")],
)
def test_the_header_is_closed(key: SoftwareKey, header: dict[str, Any], match: str) -> None:
    with pytest.raises(KeyAttestationError, match=match):
        check(proof(key, **header), key)


def test_only_es256(key: SoftwareKey) -> None:
    statement = proof(key)
    head = b64url_encode(json.dumps({"alg": "HS256", "typ": PROOF_TYP, "kid": "x"}).encode())
    statement["proof"] = head + "." + statement["proof"].split(".", 1)[1]
    with pytest.raises(KeyAttestationError, match=r"malformed.*HS256"):
        check(statement, key)


@pytest.mark.parametrize(
    "statement",
    [
        {"format": "none"},
        {"format": "none", "proof": "a.b.c", "key_class": "tpm2"},
        {"format": "tpm2", "proof": "a.b.c"},
        {"proof": "a.b.c"},
    ],
)
def test_the_statement_shape_is_closed(key: SoftwareKey, statement: dict[str, Any]) -> None:
    with pytest.raises(KeyAttestationError, match="exactly"):
        check(statement, key)


@pytest.mark.parametrize("value", [5, None, "a" * (MAX_PROOF_CHARS + 1), ["a.b.c"]])
def test_the_proof_is_a_bounded_string(key: SoftwareKey, value: Any) -> None:
    with pytest.raises(KeyAttestationError, match="compact JWS string"):
        check({"format": "none", "proof": value}, key)


def test_a_proof_at_the_size_limit_is_parsed(key: SoftwareKey) -> None:
    statement = proof(key, payload={"eat_nonce": b64url_encode(NONCE), "pad": "x" * 1000})
    assert len(statement["proof"]) > MAX_PROOF_CHARS
    padding = MAX_PROOF_CHARS - len(proof(key)["proof"])
    fitted = proof(key, payload={"eat_nonce": b64url_encode(NONCE), "p": "x" * (padding // 2)})
    assert len(fitted["proof"]) <= MAX_PROOF_CHARS
    with pytest.raises(KeyAttestationError, match="another challenge"):  # parsed, then compared
        check(fitted, key)


def test_a_tampered_signature(key: SoftwareKey) -> None:
    statement = proof(key)
    head, body, signature = statement["proof"].split(".")
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    statement["proof"] = f"{head}.{body}.{flipped}"
    with pytest.raises(KeyAttestationError, match="not signed"):
        check(statement, key)


def test_the_size_bound_is_inclusive(key: SoftwareKey, monkeypatch: pytest.MonkeyPatch) -> None:
    import attest.keyattest.none as none_format

    statement = proof(key)
    monkeypatch.setattr(none_format, "MAX_PROOF_CHARS", len(statement["proof"]))
    assert check(statement, key).key_class is KeyClass.SOFTWARE
    monkeypatch.setattr(none_format, "MAX_PROOF_CHARS", len(statement["proof"]) - 1)
    with pytest.raises(KeyAttestationError, match="compact JWS string"):
        check(statement, key)
