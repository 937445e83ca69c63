"""Access-token verification (``TokenIssuer.verify``): every refusal names its check, and a
remembered signature check never outlives the key, the expiry or the audience."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from attest.b64 import b64url_encode
from attest.errors import AlgorithmError, FormatError, SignatureError, VerificationError
from attest.jose import der_to_raw, sign_compact
from server.tokens import KeyRing, SigningKey, TokenIssuer, VerifiedTokens

NOW = 1_800_000_000
ISSUER = "https://verifier.test"


def _key(kid: str) -> SigningKey:
    return SigningKey(kid, ec.generate_private_key(ec.SECP256R1()), 0)


def _signer(key: SigningKey) -> Any:
    return lambda data: der_to_raw(key.private_key.sign(data, ec.ECDSA(hashes.SHA256())))


def _claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER, "sub": "dev-1", "aud": "gateway", "iat": NOW, "nbf": NOW,
        "exp": NOW + 600, "jti": "t-1", "cnf": {"jkt": "j"},
    }  # fmt: skip
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _token(key: SigningKey, claims: dict[str, Any], **header: Any) -> str:
    """Signed with ES256 whatever the header says (an attacker's header)."""
    head = {"alg": "ES256", "typ": "at+jwt", "kid": key.kid, **header}
    signing_input = (
        b64url_encode(json.dumps(head).encode()) + "." + b64url_encode(json.dumps(claims).encode())
    )
    return signing_input + "." + b64url_encode(_signer(key)(signing_input.encode()))


class _World:
    def __init__(self) -> None:
        self.key = _key("k1")
        self.ring = KeyRing([self.key])
        self.now = float(NOW)
        self.issuer = TokenIssuer(lambda: self.ring, issuer=ISSUER, clock=lambda: self.now)


@pytest.fixture
def world() -> _World:
    return _World()


def test_an_issued_token_verifies_and_its_claims_come_back(world: _World) -> None:
    issued = world.issuer.issue(
        device_id="dev-1", jkt="j", key_class="software", audience="gateway", ttl_s=600,
        policy_version="p1",
    )  # fmt: skip
    claims = world.issuer.verify(issued.token, audience="gateway")
    assert (claims["sub"], claims["jti"], claims["cnf"]) == ("dev-1", issued.jti, {"jkt": "j"})


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        ("alg-none", AlgorithmError, "only ES256"),
        ("alg-hs256", AlgorithmError, "only ES256"),
        ("typ", FormatError, "typ must be 'at\\+jwt'"),
        ("extra-header", FormatError, "unsupported JWS header members: jku"),
        ("unknown-kid", VerificationError, "kid is not a published key"),
        ("signature", SignatureError, "does not verify"),
        ("issuer", VerificationError, "issued by another verifier"),
        ("no-exp", FormatError, "integer 'exp'"),
        ("bool-iat", FormatError, "integer 'iat'"),
        ("no-jti", FormatError, "string 'jti'"),
        ("text-nbf", FormatError, "'nbf' claim must be an integer"),
        ("duplicate", FormatError, "member .sub. appears twice"),
        ("expired", VerificationError, "expired"),
        ("future-iat", VerificationError, "not valid yet"),
        ("future-nbf", VerificationError, "not valid yet"),
        ("audience", VerificationError, "not for this audience"),
    ],
)
def test_every_bad_token_is_refused_by_its_check(
    world: _World, case: str, error: type[Exception], message: str
) -> None:
    key = world.key
    token = {
        "alg-none": lambda: _token(key, _claims(), alg="none"),
        "alg-hs256": lambda: _token(key, _claims(), alg="HS256"),
        "typ": lambda: _token(key, _claims(), typ="JWT"),
        "extra-header": lambda: _token(key, _claims(), jku="https://evil.test/jwks"),
        "unknown-kid": lambda: _token(_key("k2"), _claims()),
        "signature": lambda: _token(key, _claims())[:-6] + "AAAAAA",
        "issuer": lambda: _token(key, _claims(iss="https://other.test")),
        "no-exp": lambda: _token(key, _claims(exp=None)),
        "bool-iat": lambda: _token(key, _claims(iat=True)),
        "no-jti": lambda: _token(key, _claims(jti=None)),
        "text-nbf": lambda: _token(key, _claims(nbf="soon")),
        "duplicate": lambda: _duplicate_sub(key),
        "expired": lambda: _token(key, _claims(exp=NOW)),
        "future-iat": lambda: _token(key, _claims(iat=NOW + 1)),
        "future-nbf": lambda: _token(key, _claims(nbf=NOW + 1)),
        "audience": lambda: _token(key, _claims(aud=["a", "b"])),
    }[case]()
    with pytest.raises(error, match=message):
        world.issuer.verify(token, audience="gateway")


def _duplicate_sub(key: SigningKey) -> str:
    payload = json.dumps(_claims())[:-1] + ', "sub": "dev-2"}'
    head = {"alg": "ES256", "typ": "at+jwt", "kid": key.kid}
    return sign_compact(head, payload.encode(), _signer(key))


def test_an_alg_none_token_is_refused_before_any_key_is_used(world: _World) -> None:
    head = b64url_encode(json.dumps({"alg": "none", "typ": "at+jwt", "kid": "k1"}).encode())
    body = b64url_encode(json.dumps(_claims()).encode())
    with pytest.raises(AlgorithmError):
        world.issuer.verify(f"{head}.{body}.", audience="gateway")


def test_a_remembered_token_is_checked_again_for_time_audience_and_key(world: _World) -> None:
    token = _token(world.key, _claims(aud=["gateway", "other"]))
    world.issuer.verify(token, audience="gateway")  # verified once, remembered
    world.issuer.verify(token, audience="other")
    with pytest.raises(VerificationError, match="not for this audience"):
        world.issuer.verify(token, audience="third")
    world.now = NOW + 600
    with pytest.raises(VerificationError, match="expired"):
        world.issuer.verify(token, audience="gateway")
    world.now = NOW + 1
    world.ring = KeyRing([_key("k3")])  # the signing key was dropped (rotated out)
    with pytest.raises(VerificationError, match="no longer published"):
        world.issuer.verify(token, audience="gateway")


def test_a_tampered_copy_of_a_remembered_token_is_verified_afresh(world: _World) -> None:
    token = _token(world.key, _claims())
    world.issuer.verify(token)
    head, _, signature = token.split(".")
    forged = head + "." + b64url_encode(json.dumps(_claims(sub="dev-9")).encode()) + "." + signature
    with pytest.raises(SignatureError):
        world.issuer.verify(forged)


def test_the_remembered_tokens_stay_bounded_and_keep_the_live_ones() -> None:
    remembered = VerifiedTokens(max_tokens=4)
    for index in range(3):
        remembered.remember(f"old{index}", ("k", {"exp": 10}), now=5)
    remembered.remember("live", ("k", {"exp": 100}), now=5)
    remembered.remember("new", ("k", {"exp": 100}), now=50)  # full: the expired ones go
    assert remembered.get("old0") is None
    assert remembered.get("live") is not None
    assert remembered.get("new") is not None
