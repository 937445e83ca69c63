"""Two verifier replicas on one PostgreSQL, sharing one data directory (keys, manifest):
a nonce issued by one is spent once at the other, and a race across both yields one token."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.devices import EVIDENCE, TestDevice
from tests.servers import VerifierProcess, init_verifier, run_server_cli, running_replicas


@pytest.fixture
def replicas(postgres_url: str, tmp_path: Path) -> Iterator[tuple[VerifierProcess, ...]]:
    first = init_verifier(tmp_path / "shared", database_url=postgres_url)
    with running_replicas(first) as both:
        yield both


def test_a_nonce_from_one_replica_is_spent_once_across_both(
    replicas: tuple[VerifierProcess, ...], tmp_path: Path
) -> None:
    a, b = replicas
    device = TestDevice.enroll(a.url, a.enroll_token(), tmp_path / "key.pem")
    evidence = device.evidence(device.challenge())  # nonce issued by a
    at_b = httpx.post(f"{b.url}/v1/attest", content=evidence, headers=EVIDENCE)
    assert at_b.status_code == 200, at_b.text
    for replica in (a, b):
        replay = httpx.post(f"{replica.url}/v1/attest", content=evidence, headers=EVIDENCE)
        assert replay.status_code == 401, replica.url
    # a token from b verifies at a: one key ring, shared through the data directory
    token = at_b.json()["access_token"]
    authz = httpx.get(f"{a.url}/v1/authz", headers={"Authorization": f"Bearer {token}"})
    assert authz.status_code == 204


def _race(evidence: str, urls: list[str]) -> list[int]:
    """Submit the same evidence to every URL at once; the status codes."""
    barrier = threading.Barrier(len(urls))
    statuses: list[int] = []
    lock = threading.Lock()

    def submit(url: str) -> None:
        with httpx.Client(timeout=30) as client:
            barrier.wait()
            status = client.post(f"{url}/v1/attest", content=evidence, headers=EVIDENCE).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=submit, args=(url,)) for url in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return statuses


def test_concurrent_double_spend_across_replicas_yields_one_token(
    replicas: tuple[VerifierProcess, ...], tmp_path: Path
) -> None:
    a, b = replicas
    device = TestDevice.enroll(b.url, b.enroll_token(), tmp_path / "key.pem")
    for _round in range(3):
        statuses = _race(device.evidence(), [(a, b)[i % 2].url for i in range(8)])
        assert sorted(statuses) == [200] + [401] * 7, statuses
    # both replicas appended to one chain under the advisory lock: it verifies
    out = run_server_cli(["audit", "verify", "--data-dir", str(a.data_dir)])
    assert "audit chain verified" in out
