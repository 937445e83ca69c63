"""The attestation pipeline in process, on an in-memory store: each step and what it audits."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attest import EAT_PROFILE
from attest.evidence import ConsentClaim, new_claims
from attest.jose import sign_compact
from attest.jwk import jwk_thumbprint, load_public_jwk
from attest.keys.software import SoftwareKey
from attest.manifest import Manifest, parse_manifest
from server.datadir import default_manifest
from server.errors import (
    AccessDeniedError,
    AttestationRejectedError,
    BadRequestError,
    ConsentRequiredError,
    ProblemError,
)
from server.nonces import ChallengeNonces, IssuedNonce
from server.policy import Policy
from server.policy.defaults import default_policy
from server.policy.model import TokenSettings
from server.policy.rules import KeyClassRule
from server.store import DeviceRecord
from server.tokens import KeyRing, SigningKey, TokenIssuer
from server.verifier import AttestationOutcome, Verifier, device_binding
from tests.devices import default_signals
from tests.server.memstore import MemoryStore

NOW = 1_800_000_000
SKEW = 300


@dataclass
class Bench:
    """A Verifier over a MemoryStore with one enrolled software device."""

    store: MemoryStore
    verifier: Verifier
    key: SoftwareKey
    device_id: str
    manifest: Manifest
    signing: ec.EllipticCurvePrivateKey

    def challenge(self, device_id: str) -> IssuedNonce:
        return asyncio.run(self.verifier.challenge(device_id))

    def attest(self, body: bytes) -> AttestationOutcome:
        return asyncio.run(self.verifier.attest(body))

    def claims(self, **overrides: Any) -> dict[str, Any]:
        nonce = overrides.pop("nonce", None) or self.challenge(self.device_id).nonce
        fields = tuple(sorted(self.manifest.field_ids))
        claims = new_claims(
            nonce=nonce,
            device_id=self.device_id,
            consent=ConsentClaim(self.manifest.sha256, NOW, fields),  # type: ignore[arg-type]
            signals=default_signals(self.manifest),
            now=NOW,
        ).to_json()
        claims.update(overrides)
        return claims

    def sign(self, claims: dict[str, Any], *, kid: str | None = None, key: Any = None) -> bytes:
        header = {"alg": "ES256", "typ": "eat+jwt", "kid": kid or claims["sub"]}
        signer = (key or self.key).sign
        return sign_compact(header, json.dumps(claims).encode(), signer).encode()

    def evidence(self, **overrides: Any) -> bytes:
        return self.sign(self.claims(**overrides))

    def refused(
        self,
        body: bytes,
        error: type[ProblemError],
        step: str,
        reason: str = "",
        device_id: str | None = "dev_a",
    ) -> dict[str, Any]:
        before = len(self.store.audit)
        with pytest.raises(error) as raised:
            self.attest(body)
        assert "envattest" in raised.value.detail  # says what to do
        assert len(self.store.audit) == before + 1, "the refusal was not audited"
        record = self.store.audit[-1]
        assert (record.event, record.decision) == ("attest.rejected", "reject")
        assert record.device_id == device_id
        assert record.data is not None
        assert record.data["step"] == step, record.data
        assert reason in record.data["reason"], record.data
        return record.data


def make_bench(tmp_path: Path, policy: Policy | None = None) -> Bench:
    store = MemoryStore(now=NOW)
    key = SoftwareKey.create(tmp_path / "device.pem")
    jwk = key.public_jwk()
    device = DeviceRecord("dev_a", jwk, jwk_thumbprint(load_public_jwk(jwk)), "software", NOW)
    store.devices[device.device_id] = device
    signing = ec.generate_private_key(ec.SECP256R1())
    ring = KeyRing([SigningKey("k1", signing, NOW)])
    manifest = parse_manifest(default_manifest("test verifier"))
    chosen = policy or default_policy()
    verifier = Verifier(
        store=store,
        nonces=ChallengeNonces(bytes(32), store),
        issuer=TokenIssuer(ring, issuer="https://verifier.test", clock=lambda: NOW),
        manifest=lambda: manifest,
        policy=lambda: chosen,
        nonce_ttl_s=120,
        max_iat_skew_s=SKEW,
        clock=lambda: NOW,
    )
    return Bench(store, verifier, key, "dev_a", manifest, signing)


@pytest.fixture
def bench(tmp_path: Path) -> Bench:
    return make_bench(tmp_path)


def test_valid_evidence_gets_a_token_after_its_audit_record(bench: Bench) -> None:
    claims = bench.claims()
    outcome = bench.attest(bench.sign(claims))
    assert outcome.decision.allow
    record = bench.store.audit[-1]
    assert (record.event, record.device_id, record.decision) == ("attest", "dev_a", "allow")
    assert outcome.audit_seq == record.seq
    assert record.data is not None
    assert record.data["jti"] == outcome.token.jti
    assert record.data["signals"] == claims["signals"]
    assert record.data["consent"] == claims["consent"]
    assert record.data["clock_skew_s"] == 0
    assert record.data["iat"] == NOW
    assert record.data["key_class"] == "software"
    assert record.data["policy_version"] == "default-1"
    assert record.data["swversion"] == claims["swversion"]
    assert len(record.data["nonce_sha256"]) == 64
    assert all(r["passed"] for r in record.data["results"])
    token = jwt.decode(
        outcome.token.token,
        bench.signing.public_key(),
        algorithms=["ES256"],
        audience="envattest",
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert token["sub"] == "dev_a"
    assert token["cnf"] == {"jkt": bench.store.devices["dev_a"].jkt}
    assert token["key_class"] == "software"
    assert token["exp"] - token["iat"] == 900
    assert token["policy_version"] == "default-1"
    assert outcome.token.expires_in == 900
    assert outcome.device.device_id == "dev_a"


def test_the_challenge_refuses_unknown_and_revoked_devices(bench: Bench) -> None:
    issued = bench.challenge("dev_a")
    assert issued.expires_in == 120
    with pytest.raises(AttestationRejectedError, match="envattest init"):
        bench.challenge("dev_nope")
    bench.store.revoke("dev_a", at=NOW)
    with pytest.raises(AttestationRejectedError):
        bench.challenge("dev_a")
    assert bench.store.audit == []  # unauthenticated refusals write nothing


def test_the_challenge_nonce_expires_after_its_ttl(bench: Bench) -> None:
    nonce = bench.challenge("dev_a").nonce
    outcome, _ = bench.verifier.nonces.spend(nonce, binding=device_binding("dev_a"), now=NOW + 120)
    assert outcome.value == "expired"


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"eat_profile": "tag:example.com,2026:other"}, "eat_profile"),
        ({"extra": 1}, "unknown claims: extra"),
        ({"iat": -5}, "claim iat"),
        ({"sub": "dev_b"}, "kid and sub"),
    ],
)
def test_claims_refused_at_parse(bench: Bench, override: dict[str, Any], reason: str) -> None:
    claims = bench.claims(**override)
    bench.refused(bench.sign(claims, kid="dev_a"), AttestationRejectedError, "parse", reason, None)


def test_kid_and_sub_mismatch_is_caught_before_the_kids_key_verifies(
    bench: Bench, tmp_path: Path
) -> None:
    # dev_b signs claims that name dev_a, under its own kid: without the kid/sub check the
    # signature verifies with dev_b's key and dev_b attests as dev_a
    other = SoftwareKey.create(tmp_path / "b.pem")
    jwk = other.public_jwk()
    bench.store.devices["dev_b"] = DeviceRecord(
        "dev_b", jwk, jwk_thumbprint(load_public_jwk(jwk)), "software", NOW
    )
    body = bench.sign(bench.claims(), kid="dev_b", key=other)
    bench.refused(body, AttestationRejectedError, "parse", "kid and sub", None)


def test_unknown_device(bench: Bench) -> None:
    claims = bench.claims(sub="dev_nope")
    bench.refused(bench.sign(claims), AttestationRejectedError, "device", "device unknown", None)


def test_revoked_device(bench: Bench) -> None:
    body = bench.evidence()
    bench.store.revoke("dev_a", at=NOW)
    data = bench.refused(body, AttestationRejectedError, "device", "revoked or erased")
    assert data["problem"] == "attestation-rejected"
    assert bench.store.audit[-1].device_id == "dev_a"


def test_signature_by_another_key(bench: Bench, tmp_path: Path) -> None:
    intruder = SoftwareKey.create(tmp_path / "x.pem")
    body = bench.sign(bench.claims(), key=intruder)
    bench.refused(body, AttestationRejectedError, "signature", "signature: ")
    assert bench.store.spent == {}  # a forged submission spends nothing


@pytest.mark.parametrize("state", ["unknown", "already-used", "other-device"])
def test_nonce_refusals(bench: Bench, state: str) -> None:
    if state == "unknown":
        nonce = "A" * 43
    elif state == "other-device":
        nonce = bench.verifier.nonces.issue(device_binding("dev_b"), now=NOW, ttl_s=60).nonce
    else:
        nonce = bench.challenge("dev_a").nonce
        bench.attest(bench.evidence(nonce=nonce))
    expected = "already-used" if state == "already-used" else "unknown"
    bench.refused(bench.evidence(nonce=nonce), AttestationRejectedError, "nonce", expected)


def test_expired_nonce(tmp_path: Path) -> None:
    bench = make_bench(tmp_path)
    nonce = bench.verifier.nonces.issue(device_binding("dev_a"), now=NOW - 200, ttl_s=200).nonce
    bench.refused(bench.evidence(nonce=nonce), AttestationRejectedError, "nonce", "expired")


@pytest.mark.parametrize(
    ("iat", "allowed"),
    [(NOW - SKEW, True), (NOW + SKEW, True), (NOW - SKEW - 1, False), (NOW + SKEW + 1, False)],
)
def test_iat_skew_bound_is_inclusive(bench: Bench, iat: int, allowed: bool) -> None:
    body = bench.evidence(iat=iat)
    if allowed:
        assert bench.attest(body).decision.allow
        return
    before = len(bench.store.spent)
    with pytest.raises(AccessDeniedError) as refused:
        bench.attest(body)
    direction = "behind" if iat < NOW else "ahead of"
    assert f"{SKEW + 1} s {direction}" in refused.value.detail
    assert f"the bound is {SKEW} s" in refused.value.detail
    assert refused.value.extra["decision"] == "deny"
    assert "clock_skew" in refused.value.extra["reasons"][0]
    assert bench.store.audit[-1].data is not None
    assert bench.store.audit[-1].data["step"] == "iat"
    assert len(bench.store.spent) == before + 1  # the nonce is spent with the refusal


def test_consent_to_another_manifest(bench: Bench) -> None:
    claims = bench.claims()
    claims["consent"]["manifest_sha256"] = "f" * 64
    with pytest.raises(ConsentRequiredError) as refused:
        bench.attest(bench.sign(claims))
    assert refused.value.extra == {"manifest_sha256": bench.manifest.sha256}
    assert bench.store.audit[-1].data is not None
    assert bench.store.audit[-1].data["step"] == "consent"


def test_signal_without_consent(bench: Bench) -> None:
    claims = bench.claims()
    claims["consent"]["fields"] = ["timezone.iana"]
    bench_refused = pytest.raises(ConsentRequiredError)
    with bench_refused:
        bench.attest(bench.sign(claims))
    data = bench.store.audit[-1].data
    assert data is not None
    assert data["step"] == "signals"
    assert "unconsented fields:" in data["reason"]
    assert "timezone.iana" not in data["reason"]


def test_consent_to_a_field_the_manifest_does_not_request(bench: Bench) -> None:
    claims = bench.claims()
    claims["consent"]["fields"].append("not.a.field")
    with pytest.raises(ConsentRequiredError):
        bench.attest(bench.sign(claims))
    data = bench.store.audit[-1].data
    assert data is not None
    assert (data["step"], data["reason"]) == ("signals", "unconsented fields: not.a.field")


def test_a_malformed_signal(bench: Bench) -> None:
    claims = bench.claims()
    claims["signals"]["timezone.utc_offset_minutes"] = "sixty"
    with pytest.raises(BadRequestError, match="malformed signal"):
        bench.attest(bench.sign(claims))
    assert bench.store.audit[-1].data is not None
    assert bench.store.audit[-1].data["step"] == "signals"


def test_a_policy_deny_is_audited_with_no_token(tmp_path: Path) -> None:
    policy = Policy(
        version="p-deny",
        rules=(KeyClassRule(allowed=frozenset()),),
        token=TokenSettings(ttl_s=60, audience="a"),
    )
    bench = make_bench(tmp_path, policy)
    with pytest.raises(AccessDeniedError) as denied:
        bench.attest(bench.evidence())
    assert denied.value.extra["decision"] == "deny"
    assert denied.value.extra["reasons"]
    record = bench.store.audit[-1]
    assert (record.event, record.decision) == ("attest", "deny")
    assert record.data is not None
    assert record.data["jti"] is None
    assert record.data["policy_version"] == "p-deny"


def test_profile_constant_is_what_the_agent_signs(bench: Bench) -> None:
    assert bench.claims()["eat_profile"] == EAT_PROFILE


def test_a_withheld_enforce_field_denies_and_names_it(bench: Bench) -> None:
    from attest.manifest import FieldMode

    enforce = sorted(r.field.id for r in bench.manifest.fields if r.mode is FieldMode.ENFORCE)
    report = sorted(r.field.id for r in bench.manifest.fields if r.mode is not FieldMode.ENFORCE)
    assert enforce
    assert report
    claims = bench.claims()
    claims["consent"]["fields"] = [f for f in claims["consent"]["fields"] if f != enforce[0]]
    del claims["signals"][enforce[0]]
    with pytest.raises(AccessDeniedError) as denied:
        bench.attest(bench.sign(claims))
    assert any(enforce[0] in r for r in denied.value.extra["reasons"])
    # a withheld report field is fine
    claims = bench.claims()
    claims["consent"]["fields"] = [f for f in claims["consent"]["fields"] if f != report[0]]
    del claims["signals"][report[0]]
    assert bench.attest(bench.sign(claims)).decision.allow


def test_refusals_after_the_device_lookup_name_the_device(bench: Bench) -> None:
    claims = bench.claims()
    claims["consent"]["manifest_sha256"] = "f" * 64
    with pytest.raises(ConsentRequiredError) as refused:
        bench.attest(bench.sign(claims))
    assert "envattest consent" in refused.value.detail
    record = bench.store.audit[-1]
    assert (record.event, record.device_id, record.decision) == (
        "attest.rejected",
        "dev_a",
        "reject",
    )
    claims = bench.claims()
    claims["consent"]["fields"] = ["timezone.iana"]
    with pytest.raises(ConsentRequiredError) as refused:
        bench.attest(bench.sign(claims))
    assert "envattest consent" in refused.value.detail
