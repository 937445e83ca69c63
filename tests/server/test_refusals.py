"""Every attack the verifier must refuse, against a real verifier process.

Each case asserts the refusal (status and problem type), that no token was issued, and the
audit record of the step that refused (``step`` in the record's data).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from attest.b64 import b64url_decode, b64url_encode
from attest.devicerequest import REQUEST_TYP, DeviceAction, sign_device_request
from attest.evidence import sign_evidence
from attest.jose import sign_compact
from attest.jwk import jwk_thumbprint, load_public_jwk
from attest.keys.software import SoftwareKey
from server.store import AuditRecord
from server.store.sql import SqlStore, make_engine
from tests.devices import EVIDENCE, TestDevice, enroll_body, enrollment_nonce
from tests.servers import VerifierProcess, init_verifier

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "evidence"


def audit_tail(server: VerifierProcess) -> list[AuditRecord]:
    """The two newest audit records of a running SQLite verifier, newest last."""
    store = SqlStore(make_engine(f"sqlite:///{server.data_dir / 'envattest.db'}"))
    try:
        count = store.audit_count()
        return [r for r in map(store.audit_record, (count - 1, count)) if r is not None]
    finally:
        store.engine.dispose()


def assert_step(
    server: VerifierProcess, event: str, step: str, reason: str = "", *, seq_after: int = 0
) -> AuditRecord:
    """The newest audit record is a refusal ``event`` by ``step``, its reason naming ``reason``."""
    record = audit_tail(server)[-1]
    assert record.seq > seq_after, "no audit record was written for the refusal"
    assert (record.event, record.decision) == (event, "reject"), record
    assert record.data is not None
    assert record.data["step"] == step, record.data
    assert reason in record.data["reason"], record.data
    return record


def newest_seq(server: VerifierProcess) -> int:
    """Sequence number of the newest audit record."""
    return audit_tail(server)[-1].seq


def assert_refused(response: httpx.Response, status: int, problem: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    doc = response.json()
    assert doc["type"] == f"urn:envattest:problem:{problem}"
    assert doc["detail"]
    assert "access_token" not in doc


@pytest.fixture(scope="module")
def device(
    shared_verifier: VerifierProcess, tmp_path_factory: pytest.TempPathFactory
) -> TestDevice:
    key_path = tmp_path_factory.mktemp("dev") / "key.pem"
    return TestDevice.enroll(shared_verifier.url, shared_verifier.enroll_token(), key_path)


@pytest.fixture(scope="module")
def other_device(
    shared_verifier: VerifierProcess, tmp_path_factory: pytest.TempPathFactory
) -> TestDevice:
    key_path = tmp_path_factory.mktemp("dev2") / "key.pem"
    return TestDevice.enroll(shared_verifier.url, shared_verifier.enroll_token(), key_path)


def _resign_payload(evidence: str, payload: dict[str, object], key: SoftwareKey) -> str:
    header = {"alg": "ES256", "typ": "eat+jwt", "kid": payload["sub"]}
    return sign_compact(header, json.dumps(payload).encode(), key.sign)


def test_valid_evidence_is_allowed(device: TestDevice, shared_verifier: VerifierProcess) -> None:
    response = device.attest(device.evidence())
    assert response.status_code == 200, response.text
    assert response.json()["access_token"]
    assert audit_tail(shared_verifier)[-1].event == "attest"


def test_replayed_evidence_is_refused(device: TestDevice, shared_verifier: VerifierProcess) -> None:
    evidence = device.evidence()
    assert device.attest(evidence).status_code == 200
    assert_refused(device.attest(evidence), 401, "attestation-rejected")
    assert_step(shared_verifier, "attest.rejected", "nonce", "already-used")


def test_reused_nonce_in_new_evidence_is_refused(
    device: TestDevice, shared_verifier: VerifierProcess
) -> None:
    nonce = device.challenge()
    assert device.attest(device.evidence(nonce)).status_code == 200
    assert_refused(device.attest(device.evidence(nonce)), 401, "attestation-rejected")
    assert_step(shared_verifier, "attest.rejected", "nonce", "already-used")


def test_unknown_nonce_is_refused(device: TestDevice, shared_verifier: VerifierProcess) -> None:
    made_up = b64url_encode(b"\x01" * 32)
    assert_refused(device.attest(device.evidence(made_up)), 401, "attestation-rejected")
    assert_step(shared_verifier, "attest.rejected", "nonce", "unknown")


def test_another_devices_nonce_is_refused(
    device: TestDevice, other_device: TestDevice, shared_verifier: VerifierProcess
) -> None:
    stolen = device.challenge(other_device.device_id)
    assert_refused(device.attest(device.evidence(stolen)), 401, "attestation-rejected")
    assert_step(shared_verifier, "attest.rejected", "nonce", "unknown")
    # the nonce is still good for its own device
    assert other_device.attest(other_device.evidence(stolen)).status_code == 200


def test_challenge_flood_under_a_device_id_does_not_lock_it_out(tmp_path: Path) -> None:
    # anyone can ask for challenges naming a device id; issuing them stores nothing, so no
    # number of them crowds out the device's own (the rate limiter is off here: this is
    # about the nonce design, not request throttling)
    server = init_verifier(tmp_path / "v")
    with (server.data_dir / "server.toml").open("a") as config:
        config.write("rate_limit_per_minute = 0\ndevice_rate_limit_per_minute = 0\n")
    server.start()
    try:
        device = TestDevice.enroll(server.url, server.enroll_token(), tmp_path / "k.pem")
        owners = device.challenge()
        db = sqlite3.connect(server.data_dir / "envattest.db")
        before = db.execute("SELECT count(*) FROM nonces").fetchone()[0]
        with httpx.Client(base_url=server.url) as client:
            for _ in range(300):
                client.post("/v1/challenge", json={"device_id": device.device_id})
        assert db.execute("SELECT count(*) FROM nonces").fetchone()[0] == before
        db.close()
        assert device.attest(device.evidence(owners)).status_code == 200
        assert device.attest(device.evidence()).status_code == 200
    finally:
        server.stop()


def test_alg_none_is_refused(device: TestDevice, shared_verifier: VerifierProcess) -> None:
    claims = device.claims(device.challenge()).to_json()
    header = {"alg": "none", "typ": "eat+jwt", "kid": device.device_id}
    token = ".".join(
        [b64url_encode(json.dumps(header).encode()), b64url_encode(json.dumps(claims).encode()), ""]
    )
    assert_refused(device.attest(token), 401, "attestation-rejected")
    assert_step(shared_verifier, "attest.rejected", "parse", "'none' is not accepted")


def test_hs256_signed_with_the_public_key_is_refused(
    device: TestDevice, shared_verifier: VerifierProcess
) -> None:
    claims = device.claims(device.challenge()).to_json()
    header = {"alg": "HS256", "typ": "eat+jwt", "kid": device.device_id}
    signing_input = (
        b64url_encode(json.dumps(header).encode())
        + "."
        + b64url_encode(json.dumps(claims).encode())
    )
    for secret in (
        json.dumps(device.key.public_jwk()).encode(),
        device.key._key.public_key().public_bytes(  # the PEM, the classic confusion
            encoding=__import__("cryptography").hazmat.primitives.serialization.Encoding.PEM,
            format=__import__(
                "cryptography"
            ).hazmat.primitives.serialization.PublicFormat.SubjectPublicKeyInfo,
        ),
    ):
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        assert_refused(
            device.attest(signing_input + "." + b64url_encode(mac)), 401, "attestation-rejected"
        )
        assert_step(shared_verifier, "attest.rejected", "parse", "'HS256' is not accepted")


def test_evidence_signed_with_the_wrong_key_is_refused(
    device: TestDevice, shared_verifier: VerifierProcess, tmp_path: Path
) -> None:
    intruder = SoftwareKey.create(tmp_path / "intruder.pem")
    evidence = sign_evidence(device.claims(device.challenge()), intruder.sign)
    assert_refused(device.attest(evidence), 401, "attestation-rejected")
    assert_step(shared_verifier, "attest.rejected", "signature")


def test_substituted_key_device_cannot_use_another_devices_id(
    device: TestDevice, other_device: TestDevice, shared_verifier: VerifierProcess
) -> None:
    # other_device signs claims naming device: the enrolled key of `device` does not verify it
    claims = device.claims(device.challenge())
    evidence = sign_evidence(claims, other_device.key.sign)
    assert_refused(device.attest(evidence), 401, "attestation-rejected")
    assert_step(shared_verifier, "attest.rejected", "signature")


def test_tampered_payload_is_refused(device: TestDevice, shared_verifier: VerifierProcess) -> None:
    evidence = device.evidence()
    header, payload, signature = evidence.split(".")
    claims = json.loads(b64url_decode(payload))
    claims["signals"]["timezone.iana"] = "Etc/UTC"
    forged = ".".join([header, b64url_encode(json.dumps(claims).encode()), signature])
    assert_refused(device.attest(forged), 401, "attestation-rejected")
    assert_step(shared_verifier, "attest.rejected", "signature")


def test_unknown_device_is_refused(
    device: TestDevice, shared_verifier: VerifierProcess, tmp_path: Path
) -> None:
    stranger = SoftwareKey.create(tmp_path / "stranger.pem")
    claims = device.claims(device.challenge()).to_json()
    claims["sub"] = "dev_unknown"
    assert_refused(
        device.attest(_resign_payload("", claims, stranger)), 401, "attestation-rejected"
    )
    assert_step(shared_verifier, "attest.rejected", "device", "unknown")


def test_kid_and_sub_naming_different_devices_is_refused(
    device: TestDevice, other_device: TestDevice, shared_verifier: VerifierProcess
) -> None:
    # signed by other_device (the kid), claims name device: without the kid/sub check the
    # signature would verify and other_device would attest under device's name
    claims = device.claims(device.challenge()).to_json()
    header = {"alg": "ES256", "typ": "eat+jwt", "kid": other_device.device_id}
    evidence = sign_compact(header, json.dumps(claims).encode(), other_device.key.sign)
    assert_refused(device.attest(evidence), 401, "attestation-rejected")
    assert_step(shared_verifier, "attest.rejected", "parse", "kid and sub")


CLAIM_VECTORS = sorted((VECTORS / "claims").glob("*.json"))


@pytest.mark.parametrize("vector", CLAIM_VECTORS, ids=[p.stem for p in CLAIM_VECTORS])
def test_signed_evidence_with_bad_claims_is_refused(
    device: TestDevice, shared_verifier: VerifierProcess, vector: Path
) -> None:
    case = json.loads(vector.read_text())
    claims = device.claims(device.challenge()).to_json()
    claims.update(case["set"])
    for name in case.get("remove", []):
        del claims[name]
    evidence = _resign_payload("", claims, device.key)
    assert_refused(device.attest(evidence), 401, "attestation-rejected")
    assert_step(shared_verifier, "attest.rejected", case["step"], case["reason"])


def test_stale_consent_hash_is_refused_with_consent_required(
    device: TestDevice, shared_verifier: VerifierProcess
) -> None:
    stale = device.consent()
    stale = type(stale)("f" * 64, stale.granted_at, stale.fields)
    assert_refused(device.attest(device.evidence(consent=stale)), 409, "consent-required")
    assert_step(shared_verifier, "attest.rejected", "consent")


def test_unconsented_field_is_refused(device: TestDevice, shared_verifier: VerifierProcess) -> None:
    consent = device.consent(("timezone.iana",))
    evidence = device.evidence(
        consent=consent, signals={"timezone.iana": "Etc/UTC", "baseurl.env": []}
    )
    assert_refused(device.attest(evidence), 409, "consent-required")
    assert_step(shared_verifier, "attest.rejected", "signals", "unconsented fields: baseurl.env")


def test_field_outside_the_catalog_cannot_even_be_signed(device: TestDevice) -> None:
    with pytest.raises(Exception, match="not a catalog field"):
        device.evidence(signals={"hostname": "laptop"})


def test_field_outside_the_catalog_is_refused(
    device: TestDevice, shared_verifier: VerifierProcess
) -> None:
    claims = device.claims(device.challenge()).to_json()
    claims["signals"]["hostname"] = "laptop"
    claims["consent"]["fields"].append("hostname")
    assert_refused(device.attest(_resign_payload("", claims, device.key)), 409, "consent-required")
    assert_step(shared_verifier, "attest.rejected", "signals", "hostname")


def test_wrongly_typed_signal_is_refused(
    device: TestDevice, shared_verifier: VerifierProcess
) -> None:
    evidence = device.evidence(signals={"timezone.utc_offset_minutes": "sixty"})
    assert_refused(device.attest(evidence), 400, "invalid-request")
    assert_step(shared_verifier, "attest.rejected", "signals", "malformed signal")


@pytest.mark.parametrize("vector", sorted(p.name for p in VECTORS.glob("*.txt")))
def test_malformed_evidence_is_refused(
    device: TestDevice, shared_verifier: VerifierProcess, vector: str
) -> None:
    body = (VECTORS / vector).read_bytes()
    assert_refused(device.attest(body), 401, "attestation-rejected")
    assert_step(shared_verifier, "attest.rejected", "parse")


def test_oversized_body_is_refused(device: TestDevice) -> None:
    assert_refused(device.attest(b"a" * (64 * 1024 + 1)), 413, "payload-too-large")


def test_oversized_body_without_content_length_is_refused(device: TestDevice) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(80):
            yield b"a" * 1024

    response = httpx.post(f"{device.base_url}/v1/attest", content=chunks(), headers=EVIDENCE)
    assert_refused(response, 413, "payload-too-large")


def test_wrong_content_type_is_refused(device: TestDevice) -> None:
    response = httpx.post(
        f"{device.base_url}/v1/attest",
        content=device.evidence().encode(),
        headers={"Content-Type": "application/json"},
    )
    assert_refused(response, 415, "unsupported-media-type")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"enrollment_token": 5, "public_jwk": {}, "key_attestation": {}}',
        b'{"enrollment_token": "x"}',
        b'{"enrollment_token": "x", "public_jwk": {"kty": "EC"}, "key_attestation": {}, "x": 1}',
    ],
)
def test_malformed_enroll_bodies_get_400(shared_verifier: VerifierProcess, body: bytes) -> None:
    response = httpx.post(
        f"{shared_verifier.url}/v1/enroll",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert_refused(response, 400, "invalid-request")


def _enroll(server: VerifierProcess, body: dict[str, object]) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/enroll", json=body)


def test_enroll_with_private_key_member_is_refused(
    shared_verifier: VerifierProcess, tmp_path: Path
) -> None:
    key = SoftwareKey.create(tmp_path / "k.pem")
    body = enroll_body(shared_verifier.url, shared_verifier.enroll_token(), key)
    body["public_jwk"] = {**key.public_jwk(), "d": "AAAA"}
    assert_refused(_enroll(shared_verifier, body), 400, "invalid-request")
    assert_step(shared_verifier, "enroll.rejected", "key", "private")


def test_a_claimed_key_class_is_refused(shared_verifier: VerifierProcess, tmp_path: Path) -> None:
    # The case the server's former second dispatch and the library disagreed on: the server
    # ignored extra members of a "none" statement, the library refuses them.
    key = SoftwareKey.create(tmp_path / "k.pem")
    body = enroll_body(shared_verifier.url, shared_verifier.enroll_token(), key)
    body["key_attestation"] = {**body["key_attestation"], "key_class": "tpm2"}  # type: ignore[dict-item]
    assert_refused(_enroll(shared_verifier, body), 401, "enrollment-rejected")
    assert_step(shared_verifier, "enroll.rejected", "proof", "exactly")


def test_enrolling_someone_elses_public_key_is_refused(
    shared_verifier: VerifierProcess, tmp_path: Path
) -> None:
    # the attacker holds a token and the victim's public key, not the victim's private key
    victim = SoftwareKey.create(tmp_path / "victim.pem")
    attacker = SoftwareKey.create(tmp_path / "attacker.pem")
    body = enroll_body(shared_verifier.url, shared_verifier.enroll_token(), attacker)
    body["public_jwk"] = victim.public_jwk()
    assert_refused(_enroll(shared_verifier, body), 401, "enrollment-rejected")
    assert_step(shared_verifier, "enroll.rejected", "proof", "another key")
    # the same with the attacker's proof re-labelled with the victim's key id
    token = shared_verifier.enroll_token()
    nonce = enrollment_nonce(shared_verifier.url, token)
    forged = sign_compact(
        {"alg": "ES256", "typ": "envattest-enroll+jwt",
         "kid": jwk_thumbprint(load_public_jwk(victim.public_jwk()))},
        json.dumps({"eat_nonce": nonce}).encode(),
        attacker.sign,
    )  # fmt: skip
    body = {
        "enrollment_token": token,
        "public_jwk": victim.public_jwk(),
        "key_attestation": {"format": "none", "proof": forged},
        "nonce": nonce,
    }
    assert_refused(_enroll(shared_verifier, body), 401, "enrollment-rejected")
    assert_step(shared_verifier, "enroll.rejected", "proof", "not signed by the key")


def test_none_enrollment_without_proof_is_refused(
    shared_verifier: VerifierProcess, tmp_path: Path
) -> None:
    key = SoftwareKey.create(tmp_path / "k.pem")
    token = shared_verifier.enroll_token()
    body = {
        "enrollment_token": token,
        "public_jwk": key.public_jwk(),
        "key_attestation": {"format": "none"},
        "nonce": enrollment_nonce(shared_verifier.url, token),
    }
    assert_refused(_enroll(shared_verifier, body), 401, "enrollment-rejected")
    assert_step(shared_verifier, "enroll.rejected", "proof")
    del body["nonce"]
    assert_refused(_enroll(shared_verifier, body), 401, "enrollment-rejected")
    assert_step(shared_verifier, "enroll.rejected", "nonce", "unknown")


def test_challenge_for_another_token_is_refused(
    shared_verifier: VerifierProcess, tmp_path: Path
) -> None:
    key = SoftwareKey.create(tmp_path / "k.pem")
    other_token = shared_verifier.enroll_token()
    token = shared_verifier.enroll_token()
    nonce = enrollment_nonce(shared_verifier.url, other_token)
    body = enroll_body(shared_verifier.url, token, key, nonce=nonce)
    assert_refused(_enroll(shared_verifier, body), 401, "enrollment-rejected")
    assert_step(shared_verifier, "enroll.rejected", "nonce", "unknown")
    # an attestation challenge is not an enrollment challenge either
    device_nonce = httpx.post(
        f"{shared_verifier.url}/v1/challenge",
        json={
            "device_id": TestDevice.enroll(
                shared_verifier.url, other_token, tmp_path / "o.pem"
            ).device_id
        },
    ).json()["nonce"]
    body = enroll_body(shared_verifier.url, token, key, nonce=device_nonce)
    assert_refused(_enroll(shared_verifier, body), 401, "enrollment-rejected")
    assert_step(shared_verifier, "enroll.rejected", "nonce", "unknown")
    # both tokens still work with their own challenges
    assert _enroll(shared_verifier, enroll_body(shared_verifier.url, token, key)).status_code == 200


def test_replayed_enrollment_challenge_is_refused(
    shared_verifier: VerifierProcess, tmp_path: Path
) -> None:
    token = shared_verifier.enroll_token(uses=2)
    first = SoftwareKey.create(tmp_path / "a.pem")
    body = enroll_body(shared_verifier.url, token, first)
    assert _enroll(shared_verifier, body).status_code == 200
    second = SoftwareKey.create(tmp_path / "b.pem")
    replay = enroll_body(shared_verifier.url, token, second, nonce=str(body["nonce"]))
    assert_refused(_enroll(shared_verifier, replay), 401, "enrollment-rejected")
    assert_step(shared_verifier, "enroll.rejected", "nonce", "already-used")


def test_enrollment_challenge_only_for_a_valid_token(shared_verifier: VerifierProcess) -> None:
    response = httpx.post(
        f"{shared_verifier.url}/v1/enroll/challenge", json={"enrollment_token": "et_made_up"}
    )
    assert_refused(response, 401, "enrollment-rejected")
    assert "ask your administrator" in response.json()["detail"]
    assert_step(shared_verifier, "enroll.rejected", "token")


def test_used_enrollment_token_is_refused(shared_verifier: VerifierProcess, tmp_path: Path) -> None:
    token = shared_verifier.enroll_token()
    key = SoftwareKey.create(tmp_path / "b.pem")
    body = enroll_body(shared_verifier.url, token, key)  # challenge while the token is valid
    TestDevice.enroll(shared_verifier.url, token, tmp_path / "a.pem")
    assert_refused(_enroll(shared_verifier, body), 401, "enrollment-rejected")
    assert_step(shared_verifier, "enroll.rejected", "token")


def test_enrolling_a_key_twice_is_refused(shared_verifier: VerifierProcess, tmp_path: Path) -> None:
    device = TestDevice.enroll(
        shared_verifier.url, shared_verifier.enroll_token(), tmp_path / "k.pem"
    )
    body = enroll_body(shared_verifier.url, shared_verifier.enroll_token(), device.key)
    assert_refused(_enroll(shared_verifier, body), 401, "enrollment-rejected")
    assert_step(shared_verifier, "enroll.rejected", "duplicate")


def test_tpm2_enrollment_without_trust_store_says_what_to_do(
    shared_verifier: VerifierProcess, tmp_path: Path
) -> None:
    key = SoftwareKey.create(tmp_path / "k.pem")
    body = enroll_body(shared_verifier.url, shared_verifier.enroll_token(), key)
    body["key_attestation"] = {"format": "tpm2"}
    response = _enroll(shared_verifier, body)
    assert_refused(response, 400, "invalid-request")
    assert "--key software" in response.json()["detail"]
    assert_step(shared_verifier, "enroll.rejected", "format")


def test_unknown_activation_is_refused(shared_verifier: VerifierProcess) -> None:
    response = httpx.post(
        f"{shared_verifier.url}/v1/enroll/activate",
        json={"enrollment_id": "enr_nope", "secret": "AAAA"},
    )
    assert_refused(response, 401, "enrollment-rejected")
    assert_step(shared_verifier, "enroll.rejected", "activation", "enr_nope")


def test_challenge_for_unknown_device_is_refused(shared_verifier: VerifierProcess) -> None:
    seq = newest_seq(shared_verifier)
    response = httpx.post(f"{shared_verifier.url}/v1/challenge", json={"device_id": "dev_nope"})
    assert_refused(response, 401, "attestation-rejected")
    # unauthenticated and stateless: a flood of these must not write the audit log
    assert newest_seq(shared_verifier) == seq


def test_unknown_route_is_a_problem(shared_verifier: VerifierProcess) -> None:
    assert_refused(httpx.get(f"{shared_verifier.url}/v1/nothing"), 404, "not-found")


def test_concurrent_submissions_of_the_same_evidence_yield_one_token(
    device: TestDevice, shared_verifier: VerifierProcess
) -> None:
    evidence = device.evidence().encode()
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def submit() -> None:
        with httpx.Client() as client:
            barrier.wait()
            answer = client.post(f"{device.base_url}/v1/attest", content=evidence, headers=EVIDENCE)
            statuses.append(answer.status_code)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [401] * 7
    assert_step(shared_verifier, "attest.rejected", "nonce", "already-used")


def test_revoked_device_is_refused(shared_verifier: VerifierProcess, tmp_path: Path) -> None:
    doomed = TestDevice.enroll(
        shared_verifier.url, shared_verifier.enroll_token(), tmp_path / "d.pem"
    )
    evidence = doomed.evidence()
    forget = sign_device_request(
        device_id=doomed.device_id,
        nonce=doomed.challenge(),
        iat=int(time.time()),
        action=DeviceAction.FORGET,
        signer=doomed.key.sign,
    )
    answer = httpx.post(
        f"{shared_verifier.url}/v1/device/forget",
        content=forget.encode(),
        headers={"Content-Type": f"application/{REQUEST_TYP}"},
    )
    assert answer.status_code == 200, answer.text
    assert_refused(doomed.attest(evidence), 401, "attestation-rejected")
    assert_step(shared_verifier, "attest.rejected", "device", "revoked or erased")


def test_expired_nonce_is_refused(tmp_path: Path) -> None:
    server = init_verifier(tmp_path / "v")
    with (server.data_dir / "server.toml").open("a") as config:
        config.write("nonce_ttl_s = 1\n")
    server.start()
    try:
        dev = TestDevice.enroll(server.url, server.enroll_token(), tmp_path / "k.pem")
        nonce = dev.challenge()
        time.sleep(2.1)
        assert_refused(dev.attest(dev.evidence(nonce)), 401, "attestation-rejected")
        assert_step(server, "attest.rejected", "nonce", "expired")
    finally:
        server.stop()


def test_clock_skew_beyond_the_bound_is_denied_with_a_reason(
    device: TestDevice, shared_verifier: VerifierProcess
) -> None:
    evidence = device.evidence(iat=int(time.time()) - 3600)
    response = device.attest(evidence)
    assert_refused(response, 403, "access-denied")
    assert any("clock" in r for r in response.json()["reasons"])
    assert_step(shared_verifier, "attest.rejected", "iat", "clock_skew")
