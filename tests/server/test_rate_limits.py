"""Rate limits an unauthenticated party cannot turn against an enrolled device: before the
device's key has signed, a request counts against its client address only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from attest.b64 import b64url_encode
from attest.keys.software import SoftwareKey
from server.ratelimit import TokenBucketLimiter, attesting_device
from tests.devices import EVIDENCE
from tests.server.inprocess import Verifier, build_verifier

DEVICE_LIMIT = 3


@pytest.fixture
def verifier(tmp_path: Path) -> Iterator[Verifier]:
    built = build_verifier(
        tmp_path / "v",
        settings=f"rate_limit_per_minute = 20\ndevice_rate_limit_per_minute = {DEVICE_LIMIT}\n",
    )
    try:
        yield built
    finally:
        built.runtime.store.engine.dispose()


def test_a_flood_under_a_victims_device_id_does_not_lock_the_victim_out(
    verifier: Verifier, tmp_path: Path
) -> None:
    forger = SoftwareKey.create(tmp_path / "forger.pem")
    victim = verifier.client("192.0.2.10")
    for n in range(30):  # thirty addresses, each under its own address limit
        attacker = verifier.client(f"198.51.100.{n}")
        for _ in range(DEVICE_LIMIT + 1):
            answer = attacker.post("/v1/challenge", json={"device_id": verifier.device_id})
            assert answer.status_code == 200, answer.text
        # evidence naming the victim, signed by another key: refused at the signature step
        forged = verifier.evidence(attacker)
        header, payload, _sig = forged.split(".")
        resigned = forger.sign(f"{header}.{payload}".encode())
        answer = attacker.post(
            "/v1/attest", content=f"{header}.{payload}.{b64url_encode(resigned)}", headers=EVIDENCE
        )
        assert answer.status_code == 401, answer.text
        assert verifier.last_audit().data["step"] == "signature"  # type: ignore[index]
    # the victim still gets every attestation its own limit allows, then its own 429
    for _ in range(DEVICE_LIMIT):
        assert verifier.attest(victim, verifier.evidence(victim)) == 200
    evidence = verifier.evidence(victim)
    limited = victim.post("/v1/attest", content=evidence, headers=EVIDENCE)
    assert limited.status_code == 429
    assert limited.json()["type"] == "urn:envattest:problem:rate-limited"
    assert "this device" in limited.json()["detail"]


def test_an_address_over_its_limit_is_refused_whatever_device_it_names(
    verifier: Verifier,
) -> None:
    attacker = verifier.client("198.51.100.7")
    statuses = [
        attacker.post("/v1/challenge", json={"device_id": verifier.device_id}).status_code
        for _ in range(21)
    ]
    assert statuses[:20] == [200] * 20
    assert statuses[20] == 429
    assert "this address" in attacker.post("/v1/challenge", json={}).json()["detail"]
    # another address, and the device itself from it, are unaffected
    assert (
        verifier.attest(
            verifier.client("192.0.2.99"), verifier.evidence(verifier.client("192.0.2.99"))
        )
        == 200
    )


def test_ipv6_clients_are_counted_by_their_64_prefix(verifier: Verifier) -> None:
    for n in range(20):
        answer = verifier.client(f"2001:db8:1:2::{n:x}").get("/v1/manifest")
        assert answer.status_code == 200
    assert verifier.client("2001:db8:1:2:ffff::1").get("/v1/manifest").status_code == 429
    assert verifier.client("2001:db8:1:3::1").get("/v1/manifest").status_code == 200


def test_looking_at_a_bucket_does_not_spend_it() -> None:
    now = [0.0]
    limiter = TokenBucketLimiter(2, monotonic=lambda: now[0])
    for _ in range(10):
        assert limiter.wait("d") == 0.0
    assert limiter.take("d") == 0.0
    assert limiter.take("d") == 0.0
    assert limiter.wait("d") == pytest.approx(30.0)
    now[0] = 30.0
    assert limiter.wait("d") == 0.0


def _jws_with_header(header: bytes) -> bytes:
    return f"{b64url_encode(header)}.e30.AA".encode()


@pytest.mark.parametrize(
    ("body", "device"),
    [
        (_jws_with_header(b'{"kid": "dev-1"}'), "dev-1"),
        (_jws_with_header(b'{"kid": 1}'), None),
        (_jws_with_header(b'{"kid": "a", "kid": "b"}'), None),
        (_jws_with_header(b"[" * 900), None),
        (_jws_with_header(json.dumps({"kid": "x" * 129}).encode()), None),
        (b"\xff\xfe.e30.AA", None),
        (b"", None),
    ],
)
def test_the_limiter_reads_only_a_bounded_header(body: bytes, device: str | None) -> None:
    assert attesting_device(body) == device
