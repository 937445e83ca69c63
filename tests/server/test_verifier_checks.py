"""Checks of the attestation pipeline that a removed or inverted line would otherwise pass:
the per-process key cache, refusals that combine two causes, and the audit record's shape."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attest.jose import der_to_raw
from attest.jwk import jwk_thumbprint, load_public_jwk, public_jwk
from server.errors import AccessDeniedError, AttestationRejectedError, ConsentRequiredError
from server.policy import PolicyInput
from server.policy.defaults import default_policy
from server.policy.model import TokenBinding, TokenSettings
from server.store import DeviceRecord
from tests.server.test_verifier_steps import NOW, SKEW, Bench, make_bench

# P-256 (FIPS 186-4 D.1.2.3): y^2 = x^3 - 3x + b over GF(p), p = 3 mod 4
_P = 2**256 - 2**224 + 2**192 + 2**96 - 1


@pytest.fixture
def bench(tmp_path: Path) -> Bench:
    return make_bench(tmp_path)


class RawKey:
    """A P-256 private key that signs like a key provider (raw r||s)."""

    def __init__(self, private: ec.EllipticCurvePrivateKey) -> None:
        self.private = private

    def sign(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes

        return der_to_raw(self.private.sign(data, ec.ECDSA(hashes.SHA256())))


def enroll(bench: Bench, device_id: str, jwk: dict[str, str]) -> None:
    bench.store.devices[device_id] = DeviceRecord(
        device_id, jwk, jwk_thumbprint(load_public_jwk(jwk)), "software", NOW
    )


def evidence_of(bench: Bench, device_id: str, signer: Any) -> bytes:
    claims = bench.claims(nonce=bench.challenge(device_id).nonce, sub=device_id)
    return bench.sign(claims, key=signer)


def point_sharing_x(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The JWK of the other point with the same x: (x, p - y)."""
    jwk = public_jwk(key)
    y = (_P - key.public_numbers().y).to_bytes(32, "big")
    from attest.b64 import b64url_encode

    return {**jwk, "y": b64url_encode(y)}


def point_sharing_y(key: ec.EllipticCurvePublicKey) -> dict[str, str] | None:
    """The JWK of another point with the same y, if the curve has one (x^3 - 3x = c has
    other roots x' with x'^2 + x x' + x^2 - 3 = 0); None when it has not."""
    from attest.b64 import b64url_encode

    x = key.public_numbers().x
    discriminant = (12 - 3 * x * x) % _P
    root = pow(discriminant, (_P + 1) // 4, _P)
    if root * root % _P != discriminant:
        return None
    other = (-x + root) * pow(2, -1, _P) % _P
    return {**public_jwk(key), "x": b64url_encode(other.to_bytes(32, "big"))}


def test_each_device_is_verified_with_its_own_key(bench: Bench) -> None:
    # the verifier keeps loaded keys per process: the cache must be keyed by the whole point
    other = ec.generate_private_key(ec.SECP256R1())
    enroll(bench, "dev_b", public_jwk(other.public_key()))
    assert bench.attest(bench.evidence()).decision.allow  # dev_a's key now cached
    assert bench.attest(evidence_of(bench, "dev_b", RawKey(other))).decision.allow


def test_a_key_sharing_one_coordinate_is_another_key(bench: Bench) -> None:
    while True:
        private = ec.generate_private_key(ec.SECP256R1())
        same_y = point_sharing_y(private.public_key())
        if same_y is not None:
            break
    signer = RawKey(private)
    enroll(bench, "dev_b", public_jwk(private.public_key()))
    for index, twin in enumerate((point_sharing_x(private.public_key()), same_y)):
        enroll(bench, f"twin{index}", twin)
        # the twin's key is loaded (and refuses dev_b's signature), then dev_b attests
        bench.refused(
            evidence_of(bench, f"twin{index}", signer), AttestationRejectedError, "signature",
            device_id=f"twin{index}",
        )  # fmt: skip
        assert bench.attest(evidence_of(bench, "dev_b", signer)).decision.allow


def test_a_replayed_nonce_is_refused_at_the_nonce_even_when_a_claim_is_wrong(
    bench: Bench,
) -> None:
    nonce = bench.challenge("dev_a").nonce
    bench.attest(bench.evidence(nonce=nonce))
    stale = bench.evidence(nonce=nonce, iat=NOW - SKEW - 1)
    data = bench.refused(stale, AttestationRejectedError, "nonce", "nonce already-used")
    assert bench.store.audit[-1].device_id == "dev_a"
    assert data["problem"] == "attestation-rejected"


def test_a_claims_refusal_records_its_problem(bench: Bench) -> None:
    claims = bench.claims()
    claims["consent"]["manifest_sha256"] = "0" * 64
    data = bench.refused(bench.sign(claims), ConsentRequiredError, "consent")
    assert data["problem"] == "consent-required"


def test_unconsented_fields_are_all_named(bench: Bench) -> None:
    claims = bench.claims()
    taken = sorted(claims["consent"]["fields"])[:2]
    claims["consent"]["fields"] = [f for f in claims["consent"]["fields"] if f not in taken]
    data = bench.refused(bench.sign(claims), ConsentRequiredError, "signals")
    assert data["reason"] == f"unconsented fields: {taken[0]}, {taken[1]}"


def test_a_revoked_device_is_recorded_as_such(bench: Bench) -> None:
    body = bench.evidence()
    bench.store.revoke("dev_a", at=NOW)
    data = bench.refused(body, AttestationRejectedError, "device")
    assert data["reason"] == "device revoked or erased"


def test_a_challenge_refusal_names_the_device_for_the_log(bench: Bench) -> None:
    with pytest.raises(AttestationRejectedError) as refused:
        bench.challenge("dev_nobody")
    assert refused.value.audit_detail == "challenge for unknown or inactive device dev_nobody"


@pytest.mark.parametrize(("iat", "direction"), [(NOW - 1, "1 s behind"), (NOW + 1, "1 s ahead of")])
def test_the_skew_reason_says_which_clock_is_ahead(bench: Bench, iat: int, direction: str) -> None:
    bench.verifier.max_iat_skew_s = 0
    with pytest.raises(AccessDeniedError) as denied:
        bench.attest(bench.evidence(iat=iat))
    assert f"this machine's clock is {direction} the verifier's" in denied.value.detail


def test_a_policy_deny_names_its_reasons(bench: Bench) -> None:
    from attest.manifest import FieldMode

    withheld = min(r.field.id for r in bench.manifest.fields if r.mode is FieldMode.ENFORCE)
    claims = bench.claims()
    del claims["signals"][withheld]  # still consented
    with pytest.raises(AccessDeniedError) as denied:
        bench.attest(bench.sign(claims))
    reasons = denied.value.extra["reasons"]
    assert denied.value.detail == "access denied by policy: " + "; ".join(reasons)
    assert any(withheld in r for r in reasons), reasons


def test_the_audit_record_lists_every_rule_result(bench: Bench) -> None:
    outcome = bench.attest(bench.evidence())
    record = bench.store.audit[-1]
    assert record.seq == outcome.audit_seq
    assert record.data is not None
    results: list[dict[str, Any]] = record.data["results"]
    assert results
    assert {frozenset(r) for r in results} == {frozenset({"rule", "mode", "passed", "reason"})}
    assert [r["rule"] for r in results] == [r.rule for r in outcome.decision.results]


@pytest.mark.parametrize("binding", list(TokenBinding))
def test_the_token_carries_the_policy_binding(tmp_path: Path, binding: TokenBinding) -> None:
    policy = dataclasses.replace(default_policy(), token=TokenSettings(binding=binding))
    bench = make_bench(tmp_path, policy)
    outcome = bench.attest(bench.evidence())
    claims = jwt.decode(outcome.token.token, options={"verify_signature": False})
    assert claims["binding"] == binding.value


class SpyPolicy:
    """The default policy, remembering the facts each evaluation was given."""

    def __init__(self) -> None:
        self.inner = default_policy()
        self.seen: list[PolicyInput] = []

    def evaluate(self, facts: PolicyInput) -> Any:
        self.seen.append(facts)
        return self.inner.evaluate(facts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_the_policy_decides_on_the_verified_facts(tmp_path: Path) -> None:
    # every fact a rule can read (device, key class, skew, iat for the zone offset, the
    # consented fields and the manifest's enforced ones) comes from the verified evidence
    spy = SpyPolicy()
    bench = make_bench(tmp_path, policy=spy)  # type: ignore[arg-type]
    optional = sorted(r.field.id for r in bench.manifest.fields if r.mode.value != "enforce")
    consented = sorted(bench.manifest.field_ids - {optional[0]})  # one optional field declined
    claims = bench.claims(iat=NOW - 7)
    claims["consent"]["fields"] = consented
    claims["signals"] = {k: v for k, v in claims["signals"].items() if k in consented}
    assert bench.attest(bench.sign(claims)).decision.allow
    (facts,) = spy.seen
    assert facts.device_id == "dev_a"
    assert facts.key_class.value == "software"
    assert facts.clock_skew_s == 7
    assert facts.iat == NOW - 7
    assert facts.consented == frozenset(consented)
    assert facts.signals == claims["signals"]
    assert facts.required == bench.manifest.field_ids - set(optional)
