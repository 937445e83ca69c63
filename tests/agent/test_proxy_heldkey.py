"""A hardware key held open between proofs: one session for a burst, released when idle,
never reused after an error, and attestation with the session released."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from agent.proxy.heldkey import HeldKey
from attest.keys import KeyClass, ProviderName


class FakeTpm:
    """Counts sessions and fails one signature on request; one open session at a time."""

    name = ProviderName.TPM2
    claimed_class = KeyClass.TPM2

    def __init__(self) -> None:
        self.opened = 0
        self.open_now = 0
        self.fail_next = False
        self.threads: set[str] = set()

    def public_jwk(self) -> dict[str, str]:
        return {"kty": "EC"}

    def attestation(self, nonce: bytes) -> dict[str, Any]:
        assert self.open_now == 0, "attestation while a signing session is open"
        return {"format": "tpm2", "nonce": nonce.hex()}

    def sign(self, data: bytes) -> bytes:
        raise AssertionError("the held key must not use the per-call path")

    @contextmanager
    def session(self) -> Iterator[Callable[[bytes], bytes]]:
        assert self.open_now == 0, "two sessions at once"
        self.opened += 1
        self.open_now += 1

        def sign(data: bytes) -> bytes:
            self.threads.add(threading.current_thread().name)
            if self.fail_next:
                self.fail_next = False
                raise RuntimeError("TPM went away")
            return data[:1] * 64

        try:
            yield sign
        finally:
            self.open_now -= 1


def test_a_burst_of_signatures_uses_one_session_on_one_thread() -> None:
    tpm = FakeTpm()
    held = HeldKey(tpm, tpm.session, idle_s=30)
    try:
        results: list[bytes] = []
        threads = [
            threading.Thread(target=lambda: results.append(held.sign(b"x"))) for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [b"x" * 64] * 8
        assert tpm.opened == 1
        assert len(tpm.threads) == 1
    finally:
        held.close()
    assert tpm.open_now == 0


def test_the_session_is_released_when_idle_and_reopened_on_demand() -> None:
    tpm = FakeTpm()
    held = HeldKey(tpm, tpm.session, idle_s=0.1)
    try:
        held.sign(b"a")
        deadline = time.monotonic() + 5
        while tpm.open_now and time.monotonic() < deadline:
            time.sleep(0.02)
        assert tpm.open_now == 0  # other processes may reach the TPM now
        held.sign(b"b")
        assert tpm.opened == 2
    finally:
        held.close()


def test_a_failed_signature_drops_the_session() -> None:
    tpm = FakeTpm()
    held = HeldKey(tpm, tpm.session, idle_s=30)
    try:
        held.sign(b"a")
        tpm.fail_next = True
        with pytest.raises(RuntimeError, match="TPM went away"):
            held.sign(b"b")
        assert tpm.open_now == 0
        assert held.sign(b"c") == b"c" * 64
        assert tpm.opened == 2
    finally:
        held.close()


def test_attestation_runs_with_the_session_released_and_close_is_idempotent() -> None:
    tpm = FakeTpm()
    held = HeldKey(tpm, tpm.session, idle_s=30)
    held.sign(b"a")
    assert held.attestation(b"\x01") == {"format": "tpm2", "nonce": "01"}
    held.close()
    held.close()
    assert tpm.open_now == 0


def test_a_proof_made_on_the_keys_own_thread_signs_there_without_another_hop() -> None:
    tpm = FakeTpm()
    held = HeldKey(tpm, tpm.session, idle_s=60)
    try:
        # the proxy runs whole proofs on held.executor; a sign() from there must not queue
        # behind itself on the one worker (that would never finish)
        signature = held.executor.submit(held.sign, b"p").result(timeout=5)
        assert signature == b"p" * 64
        assert len(tpm.threads) == 1
        assert held.sign(b"q") == b"q" * 64  # other threads still hop onto the worker
        assert len(tpm.threads) == 1
    finally:
        held.close()
