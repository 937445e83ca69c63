"""A hardware key held open between proofs, and released when the proxy goes quiet.

A TPM signature through ``Tpm2Key.sign`` costs a connection, a primary-key creation and a key
load before the one command that signs; per request that dominates the proxy's latency. The
proxy signs instead through ``Tpm2Key.held_signer`` on one worker thread, which also makes the
rest of each proof (``executor``: one thread hop per proof, not two), and closes it after
``IDLE_S`` without use, because a TPM without a resource manager (a simulator, ``/dev/tpm0``)
serves one connection at a time and other ``envattest`` commands must get their turn.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any

from attest.keys import KeyClass, KeyProvider, ProviderName

IDLE_S = 2.0
SignerSession = Callable[[], AbstractContextManager[Callable[[bytes], bytes]]]


class HeldKey:
    """A key provider whose ``sign`` runs on one thread through a held session."""

    def __init__(
        self,
        key: KeyProvider,
        open_session: SignerSession,
        *,
        idle_s: float = IDLE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key = key
        self._open = open_session
        self._idle_s = idle_s
        self._clock = clock
        self._worker = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="envattest-key", initializer=self._note_worker
        )
        self._worker_thread: int | None = None
        self._session: contextlib.ExitStack | None = None
        self._sign: Callable[[bytes], bytes] | None = None
        self._last_use = 0.0
        self._timer: threading.Timer | None = None
        self.name: ProviderName = key.name
        self.claimed_class: KeyClass = key.claimed_class
        self.sessions_opened = 0

    def public_jwk(self) -> dict[str, str]:
        """The wrapped key's public JWK."""
        return self._key.public_jwk()

    def attestation(self, nonce: bytes) -> dict[str, Any]:
        """The wrapped key's attestation, on the key's thread with the session released."""
        return self._worker.submit(self._attestation_here, nonce).result()

    @property
    def executor(self) -> Executor:
        """The key's own thread: work submitted here signs without another hop."""
        return self._worker

    def sign(self, data: bytes) -> bytes:
        """ES256 through the held session (opened on first use); callable from any thread."""
        if threading.get_ident() == self._worker_thread:
            return self._sign_here(data)
        return self._worker.submit(self._sign_here, data).result()

    def _note_worker(self) -> None:
        self._worker_thread = threading.get_ident()

    def close(self) -> None:
        """Release the session and stop the worker (once; later calls do nothing)."""
        if self._timer is not None:
            self._timer.cancel()
        with contextlib.suppress(RuntimeError):  # already closed
            self._worker.submit(self._release).result()
        self._worker.shutdown()

    def _attestation_here(self, nonce: bytes) -> dict[str, Any]:
        self._release()
        return self._key.attestation(nonce)

    def _sign_here(self, data: bytes) -> bytes:
        if self._sign is None:
            stack = contextlib.ExitStack()
            self._sign = stack.enter_context(self._open())
            self._session = stack
            self.sessions_opened += 1
        try:
            signature = self._sign(data)
        except Exception:
            self._release()  # a broken session (TPM restarted?) is not reused
            raise
        self._last_use = self._clock()
        self._schedule_release()
        return signature

    def _schedule_release(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(self._idle_s, self._release_if_idle)
        self._timer.daemon = True
        self._timer.start()

    def _release_if_idle(self) -> None:
        with contextlib.suppress(RuntimeError):  # the worker has shut down: nothing to do
            self._worker.submit(self._release_when_idle)

    def _release_when_idle(self) -> None:
        if self._clock() - self._last_use >= self._idle_s:
            self._release()

    def _release(self) -> None:
        session, self._session, self._sign = self._session, None, None
        if session is not None:
            session.close()
