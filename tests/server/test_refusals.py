"""Every attack the verifier must refuse, against a real verifier process.

Each case asserts the refusal (status and problem type) and that no token was issued.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from attest.b64 import b64url_encode
from attest.devicerequest import REQUEST_TYP, DeviceAction, sign_device_request
from attest.evidence import sign_evidence
from attest.keys.software import SoftwareKey
from tests.devices import EVIDENCE, TestDevice
from tests.servers import VerifierProcess, init_verifier

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "evidence"


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
    from attest.jose import sign_compact

    return sign_compact(header, json.dumps(payload).encode(), key.sign)


def test_valid_evidence_is_allowed(device: TestDevice) -> None:
    response = device.attest(device.evidence())
    assert response.status_code == 200, response.text
    assert response.json()["access_token"]


def test_replayed_evidence_is_refused(device: TestDevice) -> None:
    evidence = device.evidence()
    assert device.attest(evidence).status_code == 200
    assert_refused(device.attest(evidence), 401, "attestation-rejected")


def test_reused_nonce_in_new_evidence_is_refused(device: TestDevice) -> None:
    nonce = device.challenge()
    assert device.attest(device.evidence(nonce)).status_code == 200
    assert_refused(device.attest(device.evidence(nonce)), 401, "attestation-rejected")


def test_unknown_nonce_is_refused(device: TestDevice) -> None:
    made_up = b64url_encode(b"\x01" * 32)
    assert_refused(device.attest(device.evidence(made_up)), 401, "attestation-rejected")


def test_another_devices_nonce_is_refused(device: TestDevice, other_device: TestDevice) -> None:
    stolen = device.challenge(other_device.device_id)
    assert_refused(device.attest(device.evidence(stolen)), 401, "attestation-rejected")
    # the nonce is still good for its own device
    assert other_device.attest(other_device.evidence(stolen)).status_code == 200


def test_alg_none_is_refused(device: TestDevice) -> None:
    claims = device.claims(device.challenge()).to_json()
    header = {"alg": "none", "typ": "eat+jwt", "kid": device.device_id}
    token = ".".join(
        [b64url_encode(json.dumps(header).encode()), b64url_encode(json.dumps(claims).encode()), ""]
    )
    assert_refused(device.attest(token), 401, "attestation-rejected")


def test_hs256_signed_with_the_public_key_is_refused(device: TestDevice) -> None:
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


def test_evidence_signed_with_the_wrong_key_is_refused(device: TestDevice, tmp_path: Path) -> None:
    intruder = SoftwareKey.create(tmp_path / "intruder.pem")
    evidence = sign_evidence(device.claims(device.challenge()), intruder.sign)
    assert_refused(device.attest(evidence), 401, "attestation-rejected")


def test_substituted_key_device_cannot_use_another_devices_id(
    device: TestDevice, other_device: TestDevice
) -> None:
    # other_device signs claims naming device: the enrolled key of `device` does not verify it
    claims = device.claims(device.challenge())
    evidence = sign_evidence(claims, other_device.key.sign)
    assert_refused(device.attest(evidence), 401, "attestation-rejected")


def test_tampered_payload_is_refused(device: TestDevice) -> None:
    evidence = device.evidence()
    header, payload, signature = evidence.split(".")
    claims = json.loads(__import__("attest.b64", fromlist=["x"]).b64url_decode(payload))
    claims["signals"]["timezone.iana"] = "Etc/UTC"
    forged = ".".join([header, b64url_encode(json.dumps(claims).encode()), signature])
    assert_refused(device.attest(forged), 401, "attestation-rejected")


def test_unknown_device_is_refused(device: TestDevice, tmp_path: Path) -> None:
    stranger = SoftwareKey.create(tmp_path / "stranger.pem")
    claims = device.claims(device.challenge()).to_json()
    claims["sub"] = "dev_unknown"
    assert_refused(
        device.attest(_resign_payload("", claims, stranger)), 401, "attestation-rejected"
    )


def test_kid_and_sub_naming_different_devices_is_refused(
    device: TestDevice, other_device: TestDevice
) -> None:
    claims = device.claims(device.challenge()).to_json()
    from attest.jose import sign_compact

    header = {"alg": "ES256", "typ": "eat+jwt", "kid": other_device.device_id}
    evidence = sign_compact(header, json.dumps(claims).encode(), device.key.sign)
    assert_refused(device.attest(evidence), 401, "attestation-rejected")


def test_stale_consent_hash_is_refused_with_consent_required(device: TestDevice) -> None:
    stale = device.consent()
    stale = type(stale)("f" * 64, stale.granted_at, stale.fields)
    assert_refused(device.attest(device.evidence(consent=stale)), 409, "consent-required")


def test_unconsented_field_is_refused(device: TestDevice) -> None:
    consent = device.consent(("timezone.iana",))
    evidence = device.evidence(
        consent=consent, signals={"timezone.iana": "Etc/UTC", "baseurl.env": []}
    )
    assert_refused(device.attest(evidence), 409, "consent-required")


def test_field_outside_the_catalog_cannot_even_be_signed(device: TestDevice) -> None:
    with pytest.raises(Exception, match="not a catalog field"):
        device.evidence(signals={"hostname": "laptop"})


def test_field_outside_the_catalog_is_refused(device: TestDevice) -> None:
    claims = device.claims(device.challenge()).to_json()
    claims["signals"]["hostname"] = "laptop"
    claims["consent"]["fields"].append("hostname")
    assert_refused(device.attest(_resign_payload("", claims, device.key)), 409, "consent-required")


def test_wrongly_typed_signal_is_refused(device: TestDevice) -> None:
    evidence = device.evidence(signals={"timezone.utc_offset_minutes": "sixty"})
    assert_refused(device.attest(evidence), 400, "invalid-request")


@pytest.mark.parametrize("vector", sorted(p.name for p in VECTORS.glob("*.txt")))
def test_malformed_evidence_is_refused(device: TestDevice, vector: str) -> None:
    body = (VECTORS / vector).read_bytes()
    assert_refused(device.attest(body), 401, "attestation-rejected")


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


def test_enroll_with_private_key_member_is_refused(
    shared_verifier: VerifierProcess, tmp_path: Path
) -> None:
    jwk = {**SoftwareKey.create(tmp_path / "k.pem").public_jwk(), "d": "AAAA"}
    response = httpx.post(
        f"{shared_verifier.url}/v1/enroll",
        json={
            "enrollment_token": shared_verifier.enroll_token(),
            "public_jwk": jwk,
            "key_attestation": {"format": "none"},
        },
    )
    assert_refused(response, 400, "invalid-request")


def test_a_claimed_key_class_is_ignored(shared_verifier: VerifierProcess, tmp_path: Path) -> None:
    key = SoftwareKey.create(tmp_path / "k.pem")
    response = httpx.post(
        f"{shared_verifier.url}/v1/enroll",
        json={
            "enrollment_token": shared_verifier.enroll_token(),
            "public_jwk": key.public_jwk(),
            "key_attestation": {"format": "none", "key_class": "tpm2"},
        },
    )
    assert response.status_code == 200
    assert response.json()["key_class"] == "software"


def test_used_enrollment_token_is_refused(shared_verifier: VerifierProcess, tmp_path: Path) -> None:
    token = shared_verifier.enroll_token()
    TestDevice.enroll(shared_verifier.url, token, tmp_path / "a.pem")
    with pytest.raises(httpx.HTTPStatusError, match="401"):
        TestDevice.enroll(shared_verifier.url, token, tmp_path / "b.pem")


def test_challenge_for_unknown_device_is_refused(shared_verifier: VerifierProcess) -> None:
    response = httpx.post(f"{shared_verifier.url}/v1/challenge", json={"device_id": "dev_nope"})
    assert_refused(response, 401, "attestation-rejected")


def test_unknown_route_is_a_problem(shared_verifier: VerifierProcess) -> None:
    assert_refused(httpx.get(f"{shared_verifier.url}/v1/nothing"), 404, "not-found")


def test_concurrent_submissions_of_the_same_evidence_yield_one_token(device: TestDevice) -> None:
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
    finally:
        server.stop()


def test_clock_skew_beyond_the_bound_is_denied_with_a_reason(device: TestDevice) -> None:
    evidence = device.evidence(iat=int(time.time()) - 3600)
    response = device.attest(evidence)
    assert_refused(response, 403, "access-denied")
    assert any("clock" in r for r in response.json()["reasons"])
