"""Races: one nonce, one single-use enrollment token, many clients at once."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from attest.keys.software import SoftwareKey
from server.store.sql import SqlStore, make_engine
from tests.devices import EVIDENCE, TestDevice, enroll_body
from tests.servers import VerifierProcess

RACERS = 16


def _race(requests: list[tuple[str, dict[str, object]]]) -> list[httpx.Response]:
    """Send every request at the same moment, one thread each."""
    barrier = threading.Barrier(len(requests))
    answers: list[httpx.Response | None] = [None] * len(requests)

    def send(i: int) -> None:
        url, kwargs = requests[i]
        with httpx.Client(timeout=30) as http:
            barrier.wait()
            answers[i] = http.post(url, **kwargs)  # type: ignore[arg-type]

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


def test_one_nonce_many_evidences_exactly_one_succeeds(
    verifier: VerifierProcess, tmp_path: Path
) -> None:
    device = TestDevice.enroll(verifier.url, verifier.enroll_token(), tmp_path / "key.pem")
    nonce = device.challenge()
    evidences = {device.evidence(nonce) for _ in range(RACERS)}
    assert len(evidences) == RACERS  # all different (ECDSA signatures are randomised)
    answers = _race(
        [(f"{verifier.url}/v1/attest", {"content": e, "headers": EVIDENCE}) for e in evidences]
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] + [401] * (RACERS - 1), codes
    assert sum("access_token" in a.text for a in answers) == 1


def test_single_use_enrollment_token_enrolls_exactly_one(
    verifier: VerifierProcess, tmp_path: Path
) -> None:
    token = verifier.enroll_token(uses=1)
    keys = [SoftwareKey.create(tmp_path / f"key-{i}.pem") for i in range(RACERS)]
    answers = _race(
        [
            (
                f"{verifier.url}/v1/enroll",
                {"json": enroll_body(verifier.url, token, key)},
            )
            for key in keys
        ]
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] + [401] * (RACERS - 1), codes
    store = SqlStore(make_engine(f"sqlite:///{verifier.data_dir / 'envattest.db'}"))
    assert len(store.list_devices()) == 1
