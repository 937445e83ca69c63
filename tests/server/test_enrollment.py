"""Enrollment in process, on an in-memory store: every step, and the step that refuses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

import server.enrollment as enrollment_module
from attest.b64 import b64url_decode, b64url_encode
from attest.jose import sign_compact
from attest.jwk import jwk_thumbprint, load_public_jwk
from attest.keyattest import make_activation_challenge
from attest.keys import KeyClass
from attest.keys.software import SoftwareKey
from attest.tpm import trust_store_from_certificates
from server.enrollment import (
    EnrolledDevice,
    Enrollment,
    PendingTpm2,
    enrollment_binding,
    token_sha256,
)
from server.errors import BadRequestError, EnrollmentRejectedError, ProblemError
from server.nonces import ChallengeNonces
from server.store import AuditEvent, AuditRecord, NonceOutcome
from tests.server.memstore import MemoryStore

NOW = 1_800_000_000
TOKEN = "et_test-token"
TPM_VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "tpm"


@dataclass
class Bench:
    """An Enrollment on a MemoryStore with one valid token, and a software key."""

    store: MemoryStore
    enrollment: Enrollment
    key: SoftwareKey

    def body(self, *, token: str = TOKEN, key: SoftwareKey | None = None) -> dict[str, Any]:
        key = key or self.key
        nonce = self.enrollment.challenge(token).nonce
        return {
            "enrollment_token": token,
            "jwk": key.public_jwk(),
            "statement": key.attestation(b64url_decode(nonce)),
            "nonce": nonce,
        }

    def refused(self, error: type[ProblemError], step: str, reason: str = "", **body: Any) -> None:
        before = len(self.store.audit)
        with pytest.raises(error) as raised:
            self.enrollment.enroll(**body)
        assert isinstance(raised.value.detail, str)
        assert len(raised.value.detail) > 20  # a sentence that says what to do
        assert len(self.store.audit) == before + 1, "the refusal was not audited"
        record = self.store.audit[-1]
        assert (record.event, record.decision) == ("enroll.rejected", "reject")
        assert record.data is not None
        assert record.data["step"] == step, record.data
        assert reason in record.data["reason"], record.data


def make_bench(tmp_path: Path, *, uses: int = 5, trust_store: Any = None) -> Bench:
    store = MemoryStore(now=NOW)
    store.add_enrollment_token(token_sha256(TOKEN), uses=uses, expires_at=NOW + 3600)
    enrollment = Enrollment(
        store,
        ChallengeNonces(bytes(32), store),
        trust_store=trust_store,
        ttl_s=300,
        clock=lambda: NOW,
    )
    return Bench(store, enrollment, SoftwareKey.create(tmp_path / "key.pem"))


@pytest.fixture
def bench(tmp_path: Path) -> Bench:
    return make_bench(tmp_path)


def test_a_key_that_signs_the_challenge_enrolls_as_software(bench: Bench) -> None:
    done = bench.enrollment.enroll(**bench.body())
    assert isinstance(done, EnrolledDevice)
    assert done.key_class is KeyClass.SOFTWARE
    device = bench.store.devices[done.device_id]
    assert device.public_jwk == bench.key.public_jwk()
    assert device.jkt == jwk_thumbprint(load_public_jwk(bench.key.public_jwk()))
    assert (device.key_class, device.enrolled_at) == ("software", NOW)
    record = bench.store.audit[-1]
    assert (record.event, record.device_id, record.decision) == ("enroll", done.device_id, "allow")
    assert record.data == {"key_class": "software", "jkt": device.jkt, "proof": "none"}
    assert bench.store.tokens[token_sha256(TOKEN)][0] == 4  # one use spent


def test_the_challenge_is_only_for_a_valid_token(bench: Bench) -> None:
    issued = bench.enrollment.challenge(TOKEN)
    assert issued.expires_in == 300
    assert bench.store.audit == []  # nothing spent, nothing written
    assert bench.store.spent == {}
    with pytest.raises(EnrollmentRejectedError, match="ask your administrator"):
        bench.enrollment.challenge("et_unknown")
    assert bench.store.audit[-1].data == {
        "step": "token",
        "reason": "bad enrollment token",
        "problem": "enrollment-rejected",
    }


@pytest.mark.parametrize("state", ["expired", "used-up"])
def test_no_challenge_for_an_expired_or_used_up_token(bench: Bench, state: str) -> None:
    uses, expires_at = (1, NOW) if state == "expired" else (0, NOW + 10)
    bench.store.add_enrollment_token(token_sha256("et_x"), uses=uses, expires_at=expires_at)
    with pytest.raises(EnrollmentRejectedError):
        bench.enrollment.challenge("et_x")


def test_the_challenge_is_bound_to_the_token(bench: Bench) -> None:
    nonce = bench.enrollment.challenge(TOKEN).nonce
    nonces = bench.enrollment.nonces
    assert nonces.spend(nonce, binding=enrollment_binding("et_other"), now=NOW)[0] is (
        NonceOutcome.UNKNOWN
    )
    assert nonces.spend(nonce, binding=enrollment_binding(TOKEN), now=NOW)[0] is (
        NonceOutcome.CONSUMED
    )


def test_someone_elses_public_key_is_refused(bench: Bench, tmp_path: Path) -> None:
    victim = SoftwareKey.create(tmp_path / "victim.pem")
    body = bench.body()
    body["jwk"] = victim.public_jwk()
    bench.refused(EnrollmentRejectedError, "proof", "another key", **body)
    assert bench.store.audit[-1].data is not None
    assert bench.store.audit[-1].data["format"] == "none"
    assert bench.store.devices == {}
    assert bench.store.tokens[token_sha256(TOKEN)][0] == 5  # the token is not spent


def test_a_proof_relabelled_with_the_victims_key_id_is_refused(
    bench: Bench, tmp_path: Path
) -> None:
    victim = SoftwareKey.create(tmp_path / "victim.pem")
    nonce = bench.enrollment.challenge(TOKEN).nonce
    kid = jwk_thumbprint(load_public_jwk(victim.public_jwk()))
    proof = sign_compact(
        {"alg": "ES256", "typ": "envattest-enroll+jwt", "kid": kid},
        json.dumps({"eat_nonce": nonce}).encode(),
        bench.key.sign,
    )
    bench.refused(
        EnrollmentRejectedError, "proof", "not signed by the key",
        enrollment_token=TOKEN, jwk=victim.public_jwk(), nonce=nonce,
        statement={"format": "none", "proof": proof},
    )  # fmt: skip


def test_a_proof_over_another_challenge_is_refused(bench: Bench) -> None:
    body = bench.body()
    other = bench.body()
    body["statement"] = other["statement"]  # signs the other challenge
    bench.refused(EnrollmentRejectedError, "proof", "another challenge", **body)


def test_a_challenge_for_another_token_is_refused(bench: Bench) -> None:
    bench.store.add_enrollment_token(token_sha256("et_other"), uses=1, expires_at=NOW + 60)
    body = bench.body(token="et_other")
    body["enrollment_token"] = TOKEN
    bench.refused(EnrollmentRejectedError, "nonce", "enrollment nonce unknown", **body)
    assert bench.store.audit[-1].data is not None
    assert bench.store.audit[-1].data["format"] == "none"


def test_a_replayed_challenge_is_refused(bench: Bench, tmp_path: Path) -> None:
    body = bench.body()
    assert isinstance(bench.enrollment.enroll(**body), EnrolledDevice)
    second = SoftwareKey.create(tmp_path / "second.pem")
    replay = {
        **body,
        "jwk": second.public_jwk(),
        "statement": second.attestation(b64url_decode(body["nonce"])),
    }
    bench.refused(EnrollmentRejectedError, "nonce", "already-used", **replay)


def test_a_missing_nonce_is_refused(bench: Bench) -> None:
    body = {**bench.body(), "nonce": None}
    bench.refused(EnrollmentRejectedError, "nonce", "unknown", **body)


def test_an_invalid_token_is_refused_before_anything_else(bench: Bench) -> None:
    body = {**bench.body(), "enrollment_token": "et_unknown"}
    bench.refused(EnrollmentRejectedError, "token", "bad enrollment token", **body)


def test_a_token_used_up_between_challenge_and_enroll_is_refused(bench: Bench) -> None:
    body = bench.body()
    # another replica spends the last use after this request's first check
    original = bench.store.spend_enrollment_token
    bench.store.spend_enrollment_token = lambda *a, **k: False  # type: ignore[method-assign]
    bench.refused(EnrollmentRejectedError, "token", "used up meanwhile", **body)
    assert bench.store.audit[-1].data is not None
    assert bench.store.audit[-1].data["reason"] == "token used up meanwhile"
    bench.store.spend_enrollment_token = original  # type: ignore[method-assign]
    assert bench.store.devices == {}


@pytest.mark.parametrize(
    ("jwk", "statement"),
    [
        ({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}, None),
        ({"kty": "RSA"}, None),
        (None, {"format": "packed"}),
        (None, {"proof": "a.b.c"}),
    ],
)
def test_a_bad_key_or_format_is_a_400(
    bench: Bench, jwk: dict[str, str] | None, statement: dict[str, Any] | None
) -> None:
    body = bench.body()
    body["jwk"] = jwk or body["jwk"]
    body["statement"] = statement or body["statement"]
    bench.refused(BadRequestError, "key", **body)


def test_a_private_key_member_is_refused(bench: Bench) -> None:
    body = bench.body()
    body["jwk"] = {**body["jwk"], "d": "AAAA"}
    bench.refused(BadRequestError, "key", "private", **body)


@pytest.mark.parametrize(
    "statement",
    [
        {"format": "none"},
        {"format": "none", "proof": "a.b.c", "key_class": "tpm2"},
        {"format": "none", "proof": 5},
        {"format": "none", "proof": "not-a-jws"},
    ],
)
def test_a_none_statement_without_a_valid_proof_is_refused(
    bench: Bench, statement: dict[str, Any]
) -> None:
    body = {**bench.body(), "statement": statement}
    bench.refused(EnrollmentRejectedError, "proof", "none:", **body)


def test_the_same_key_twice_is_refused(bench: Bench) -> None:
    assert isinstance(bench.enrollment.enroll(**bench.body()), EnrolledDevice)
    bench.refused(EnrollmentRejectedError, "duplicate", "already enrolled", **bench.body())
    assert bench.store.audit[-1].data is not None
    assert bench.store.audit[-1].data["reason"].startswith("key ")


def test_tpm2_without_a_trust_store_says_what_to_do(bench: Bench) -> None:
    body = {**bench.body(), "statement": {"format": "tpm2"}}
    with pytest.raises(BadRequestError, match="--key software"):
        bench.enrollment.enroll(**body)
    assert bench.store.audit[-1].data is not None
    assert bench.store.audit[-1].data["step"] == "format"


# tpm2 through the same path, on a static vector (made from swtpm by tests/vectors/tpm)


class VectorNonces(ChallengeNonces):
    """Accepts the vector's fixed nonce once, as if this verifier had issued it."""

    def __init__(self, store: MemoryStore, nonce: str) -> None:
        super().__init__(bytes(32), store)
        self._vector_nonce = nonce
        self._store_ = store

    def spend(
        self, nonce: str, *, binding: str, now: int, audit: AuditEvent | None = None
    ) -> tuple[NonceOutcome, AuditRecord | None]:
        if nonce != self._vector_nonce:
            return NonceOutcome.UNKNOWN, None
        return self._store_.spend_nonce(
            nonce, binding=binding, expires_at=now + 60, now=now, audit=audit
        )


def tpm_bench(tmp_path: Path, name: str) -> tuple[Bench, dict[str, Any]]:
    case: dict[str, Any] = json.loads((TPM_VECTORS / f"{name}.json").read_text())
    certs = [x509.load_pem_x509_certificate(p.encode()) for p in case["trust_store_pem"]]
    bench = make_bench(tmp_path, trust_store=trust_store_from_certificates(certs))
    now = int(__import__("datetime").datetime.fromisoformat(case["now"]).timestamp())
    bench.store.now = now
    bench.enrollment = Enrollment(
        bench.store,
        VectorNonces(bench.store, case["expected_nonce"]),
        trust_store=bench.enrollment.trust_store,
        ttl_s=300,
        clock=lambda: now,
    )
    bench.store.add_enrollment_token(token_sha256(TOKEN), uses=5, expires_at=now + 3600)
    return bench, case


def test_tpm2_enrolls_only_after_activation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench, case = tpm_bench(tmp_path, "valid_rsa2048_ek")
    secret = bytes(range(32))
    monkeypatch.setattr(
        enrollment_module,
        "make_activation_challenge",
        lambda verified: make_activation_challenge(verified, secret=secret),
    )
    pending = bench.enrollment.enroll(
        enrollment_token=TOKEN,
        jwk=case["expected_jwk"],
        statement=case["statement"],
        nonce=case["expected_nonce"],
    )
    assert isinstance(pending, PendingTpm2)
    assert pending.expires_in == 300
    assert bench.store.devices == {}  # nothing is tpm2 before activation
    assert bench.store.tokens[token_sha256(TOKEN)][0] == 4
    with pytest.raises(EnrollmentRejectedError, match="credential activation failed"):
        bench.enrollment.activate_tpm2(
            enrollment_id=pending.enrollment_id, secret=b64url_encode(bytes(32))
        )
    data = bench.store.audit[-1].data
    assert data is not None
    assert (data["step"], data["format"]) == ("activation", "tpm2")
    assert data["reason"] == f"wrong activation secret for {pending.enrollment_id}"
    # the wrong answer used up the pending enrollment
    with pytest.raises(EnrollmentRejectedError, match="unknown, expired or already answered"):
        bench.enrollment.activate_tpm2(
            enrollment_id=pending.enrollment_id, secret=b64url_encode(secret)
        )


def test_tpm2_activation_with_the_secret_records_tpm2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench, case = tpm_bench(tmp_path, "valid_ecc_p384_ek")
    secret = bytes(range(32))
    monkeypatch.setattr(
        enrollment_module,
        "make_activation_challenge",
        lambda verified: make_activation_challenge(verified, secret=secret),
    )
    pending = bench.enrollment.enroll(
        enrollment_token=TOKEN,
        jwk=case["expected_jwk"],
        statement=case["statement"],
        nonce=case["expected_nonce"],
    )
    assert isinstance(pending, PendingTpm2)
    blob = b64url_decode(pending.credential_blob)
    assert len(blob) == 2 + 2 + 48 + 2 + 32
    assert b64url_decode(pending.encrypted_secret)
    done = bench.enrollment.activate_tpm2(
        enrollment_id=pending.enrollment_id, secret=b64url_encode(secret)
    )
    assert done.key_class is KeyClass.TPM2
    record = bench.store.audit[-1]
    assert record.data is not None
    assert record.data["key_class"] == "tpm2"
    assert record.data["proof"] == "tpm2"
    assert {"ek_certificate_sha256", "ek_public_sha256", "ak_name", "key_name"} <= set(record.data)


def test_tpm2_proof_refused_keeps_the_token(tmp_path: Path) -> None:
    bench, case = tpm_bench(tmp_path, "refuse_key_without_fixed_tpm")
    with pytest.raises(EnrollmentRejectedError, match="envattest doctor"):
        bench.enrollment.enroll(
            enrollment_token=TOKEN,
            jwk=case["expected_jwk"],
            statement=case["statement"],
            nonce=case["expected_nonce"],
        )
    assert bench.store.audit[-1].data is not None
    assert bench.store.audit[-1].data["step"] == "proof"
    assert bench.store.tokens[token_sha256(TOKEN)][0] == 5


def test_an_expired_pending_enrollment_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench, case = tpm_bench(tmp_path, "valid_rsa2048_ek")
    pending = bench.enrollment.enroll(
        enrollment_token=TOKEN,
        jwk=case["expected_jwk"],
        statement=case["statement"],
        nonce=case["expected_nonce"],
    )
    assert isinstance(pending, PendingTpm2)
    stored = bench.store.pending[pending.enrollment_id]
    assert stored.expires_at == bench.store.now + 300
    assert pending.enrollment_id.startswith("enr_")
    assert len(pending.enrollment_id) == 4 + 24


def test_ids_and_tokens_are_long_random_strings(bench: Bench) -> None:
    from server.enrollment import new_device_id, new_enrollment_token

    token = new_enrollment_token()
    assert token.startswith("et_")
    assert len(token) == 3 + 32
    assert token != new_enrollment_token()
    device = new_device_id()
    assert device.startswith("dev_")
    assert len(device) == 4 + 24
    done = bench.enrollment.enroll(**bench.body())
    assert isinstance(done, EnrolledDevice)
    assert done.device_id.startswith("dev_")
    assert bench.store.devices[done.device_id].device_id == done.device_id


def test_an_unknown_activation_is_refused_and_audited(bench: Bench) -> None:
    with pytest.raises(EnrollmentRejectedError, match="run 'envattest init' again"):
        bench.enrollment.activate_tpm2(enrollment_id="enr_nope", secret="AAAA")
    data = bench.store.audit[-1].data
    assert data is not None
    assert (data["step"], data["format"]) == ("activation", "tpm2")
    assert "enr_nope" in data["reason"]


def test_the_tpm_trust_store_is_loaded_from_its_directory(tmp_path: Path) -> None:
    from server.enrollment import load_tpm_trust_store
    from server.errors import ConfigError

    assert load_tpm_trust_store(None) is None
    case = json.loads((TPM_VECTORS / "valid_rsa2048_ek.json").read_text())
    roots = tmp_path / "roots"
    roots.mkdir()
    for index, pem in enumerate(case["trust_store_pem"]):
        (roots / f"ca{index}.pem").write_text(pem)
    store = load_tpm_trust_store(roots)
    assert store is not None
    assert store.anchors
    with pytest.raises(ConfigError, match="--tpm-roots"):
        load_tpm_trust_store(tmp_path / "absent")
