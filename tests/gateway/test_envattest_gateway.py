"""envattest_gateway without a network: each check refuses at its own step.

The verifier is an ``httpx.MockTransport`` serving a JWKS and introspection answers; tokens
are signed with a real P-256 key, the way the verifier signs them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attest.jwk import public_jwk
from envattest_gateway.checker import TokenChecker
from envattest_gateway.errors import (
    BindingError,
    InactiveTokenError,
    InvalidTokenError,
    MissingTokenError,
    VerifierUnavailableError,
)
from envattest_gateway.jwks import parse_jwks
from envattest_gateway.litellm import LiteLLMSettings, litellm_key
from envattest_gateway.pem import write_key_files

ISSUER = "https://verifier.example"
NOW = 1_800_000_000


class FakeVerifier:
    """JWKS, introspection and forward auth, counting calls."""

    def __init__(self) -> None:
        self.keys: dict[str, ec.EllipticCurvePrivateKey] = {
            "k1": ec.generate_private_key(ec.SECP256R1())
        }
        self.calls: list[str] = []
        self.introspection: dict[str, Any] = {
            "active": True,
            "token_type": "Bearer",
            "key_class": "tpm2",
        }
        self.forms: list[dict[str, str]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request.url.path)
        if request.url.path == "/.well-known/jwks.json":
            jwks = [{**public_jwk(k.public_key()), "kid": kid} for kid, k in self.keys.items()]
            return httpx.Response(200, json={"keys": jwks})
        if request.url.path == "/v1/introspect":
            if request.headers.get("authorization") != "Bearer gw_test.secret":
                return httpx.Response(401, json={"detail": "gateway credential"})
            form = dict(httpx.QueryParams(request.content.decode()))
            self.forms.append(form)
            if "dpop" in form:
                good = form["dpop"] == "good-proof" and form["htu"] == "https://gw/v1/messages"
                return httpx.Response(
                    200, json={**self.introspection, "token_type": "DPoP", "active": good}
                )
            return httpx.Response(200, json=self.introspection)
        return httpx.Response(404)

    def token(self, kid: str = "k1", **overrides: Any) -> str:
        claims = {
            "iss": ISSUER, "sub": "dev_1", "aud": "envattest", "iat": NOW, "nbf": NOW,
            "exp": NOW + 900, "jti": "j1", "cnf": {"jkt": "x"}, "key_class": "tpm2",
            "policy_version": "p1", **overrides,
        }  # fmt: skip
        return jwt.encode(claims, self.keys[kid], algorithm="ES256", headers={"kid": kid})


def _checker(verifier: FakeVerifier, *, clock: Callable[[], float] = lambda: NOW) -> TokenChecker:
    http = httpx.AsyncClient(transport=httpx.MockTransport(verifier.handler))
    checker = TokenChecker.for_verifier(
        ISSUER, credential="gw_test.secret", audience="envattest", http=http
    )
    checker._clock = clock
    return checker


def _check(checker: TokenChecker, **headers: str | None) -> Any:
    args: dict[str, Any] = {"authorization": None, "api_key": None, **headers}
    return asyncio.run(checker.check(**args))


@pytest.fixture
def verifier() -> FakeVerifier:
    return FakeVerifier()


def test_a_valid_token_gives_the_verifiers_identity(verifier: FakeVerifier) -> None:
    identity = _check(_checker(verifier), api_key=verifier.token())
    assert (identity.device_id, identity.key_class, identity.policy_version) == (
        "dev_1",
        "tpm2",
        "p1",
    )


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda v: "", MissingTokenError, "no envattest access token"),
        (lambda v: "a.b", InvalidTokenError, "malformed"),
        (lambda v: _unsigned({"sub": "x"}), InvalidTokenError, "ES256"),
        (lambda v: jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256", headers={"kid": "k1"}),
         InvalidTokenError, "ES256"),
        (lambda v: _other_key_token(v), InvalidTokenError, "not signed by this verifier"),
        (lambda v: v.token(iss="https://evil"), InvalidTokenError, "does not verify"),
        (lambda v: v.token(aud="elsewhere"), InvalidTokenError, "does not verify"),
        (lambda v: v.token(exp=NOW), InvalidTokenError, "has expired"),
        (lambda v: v.token(nbf=NOW + 3600), InvalidTokenError, "not valid yet"),
    ],
    ids=["none", "malformed", "alg-none", "hmac", "unknown-kid", "issuer", "audience", "expired",
         "nbf"],
)  # fmt: skip
def test_each_offline_check_refuses_at_its_step(
    verifier: FakeVerifier, make: Callable[[FakeVerifier], str], error: type[Exception], match: str
) -> None:
    token = make(verifier)
    with pytest.raises(error, match=match):
        _check(_checker(verifier), authorization=f"Bearer {token}" if token else None)
    assert "/v1/introspect" not in verifier.calls


def _unsigned(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]


def _other_key_token(verifier: FakeVerifier) -> str:
    stranger = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(
        {"sub": "x", "iss": ISSUER}, stranger, algorithm="ES256", headers={"kid": "k9"}
    )


def test_an_unknown_kid_refetches_the_jwks_once_and_then_waits(verifier: FakeVerifier) -> None:
    checker = _checker(verifier)
    _check(checker, api_key=verifier.token())
    verifier.keys["k2"] = ec.generate_private_key(ec.SECP256R1())  # keys rotate
    clock = [0.0]
    checker._jwks._clock = lambda: clock[0]
    checker._jwks._fetched_at = -100.0
    assert _check(checker, api_key=verifier.token(kid="k2")).device_id == "dev_1"
    assert verifier.calls.count("/.well-known/jwks.json") == 2
    for _ in range(3):  # a stream of unknown kids does not become a stream of fetches
        with pytest.raises(InvalidTokenError):
            _check(checker, api_key=_other_key_token(verifier))
    assert verifier.calls.count("/.well-known/jwks.json") == 2
    clock[0] = 31.0
    with pytest.raises(InvalidTokenError):
        _check(checker, api_key=_other_key_token(verifier))
    assert verifier.calls.count("/.well-known/jwks.json") == 3


def test_revocation_comes_from_introspection_cached_briefly(verifier: FakeVerifier) -> None:
    checker = _checker(verifier)
    clock = [0.0]
    checker._introspection._clock = lambda: clock[0]
    token = verifier.token()
    _check(checker, api_key=token)
    verifier.introspection = {"active": False}  # revoked at the verifier
    _check(checker, api_key=token)  # still inside the 5 s cache
    assert verifier.calls.count("/v1/introspect") == 1
    clock[0] = 5.1
    with pytest.raises(InactiveTokenError, match="ask your administrator"):
        _check(checker, api_key=token)


def test_a_wrong_gateway_credential_says_how_to_make_one(verifier: FakeVerifier) -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(verifier.handler))
    checker = TokenChecker.for_verifier(ISSUER, credential="gw_wrong.x", audience=None, http=http)
    checker._clock = lambda: NOW
    with pytest.raises(VerifierUnavailableError, match="gateway-credential create"):
        _check(checker, api_key=verifier.token())


def test_a_dpop_bound_token_as_bearer_is_refused_before_introspection(
    verifier: FakeVerifier,
) -> None:
    bound = verifier.token(binding="dpop")
    for sent in ({"authorization": f"Bearer {bound}"}, {"api_key": bound}):
        with pytest.raises(BindingError, match="envattest proxy"):
            _check(_checker(verifier), **sent)
    assert "/v1/introspect" not in verifier.calls


def test_a_dpop_proof_is_checked_by_the_verifier_for_this_request(
    verifier: FakeVerifier,
) -> None:
    bound = verifier.token(binding="dpop")
    request = {"authorization": f"DPoP {bound}", "method": "POST"}
    checker = _checker(verifier)
    url = "https://gw/v1/messages?beta=true"
    assert _check(checker, dpop="good-proof", url=url, **request).device_id == "dev_1"
    assert verifier.forms[-1] == {
        "token": bound, "dpop": "good-proof", "htm": "POST", "htu": "https://gw/v1/messages"
    }  # fmt: skip
    with pytest.raises(InactiveTokenError, match="DPoP proof"):
        _check(checker, dpop="replayed-or-forged", url=url, **request)
    with pytest.raises(BindingError):
        _check(checker, url=url, **request)  # DPoP scheme without a proof


def test_a_gateway_that_does_not_know_its_url_refuses_dpop_without_asking(
    verifier: FakeVerifier,
) -> None:
    bound = verifier.token(binding="dpop")
    request = {"authorization": f"DPoP {bound}", "method": "POST", "dpop": "good-proof"}
    with pytest.raises(BindingError, match="ENVATTEST_EXTERNAL_URL"):
        _check(_checker(verifier), url="", **request)
    assert "/v1/introspect" not in verifier.calls


def test_litellm_settings_and_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ENVATTEST_VERIFIER_URL and ENVATTEST_GATEWAY_CREDENTIAL"):
        LiteLLMSettings.from_env({})
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"dev_1": "alice"}))
    settings = LiteLLMSettings.from_env(
        {"ENVATTEST_VERIFIER_URL": "https://v/", "ENVATTEST_GATEWAY_CREDENTIAL": "gw_x.y",
         "ENVATTEST_USERS": str(users)}
    )  # fmt: skip
    assert (settings.issuer, settings.audience, settings.cache_s) == ("https://v", None, 5.0)
    verifier = FakeVerifier()
    identity = _check(_checker(verifier), api_key=verifier.token())
    key = litellm_key(identity, settings.users)
    assert (key["user_id"], key["api_key"]) == ("alice", "envattest:dev_1")


def test_key_files_name_the_signing_key_current(tmp_path: Path) -> None:
    verifier = FakeVerifier()
    verifier.keys["k2"] = ec.generate_private_key(ec.SECP256R1())
    jwks = json.dumps({"keys": [{**public_jwk(k.public_key()), "kid": kid}
                                for kid, k in verifier.keys.items()]}).encode()  # fmt: skip
    write_key_files(parse_jwks(jwks), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current.pem", "k1.pem", "k2.pem"]
    assert (tmp_path / "current.pem").read_bytes() == (tmp_path / "k2.pem").read_bytes()
    with pytest.raises(ValueError, match="no P-256 key"):
        write_key_files({}, tmp_path)
