"""Running the proxy: its own event loop in a background thread, for the lifetime of a tool.

``BackgroundProxy.start`` binds 127.0.0.1 (a free port unless one is given), attests once so
that a refusal surfaces before the tool starts, then serves until ``stop``. The device key is
wrapped so that proofs and attestations never use it from two threads at once: a TPM without
a resource manager serves one command at a time.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from agent.proxy.credentials import (
    Clock,
    IssuedToken,
    ObtainToken,
    ProofFactory,
    RequestCredentials,
    TokenSource,
)
from agent.proxy.pool import ConnectionPool, Origin
from agent.proxy.rewrite import Upstream
from agent.proxy.secret import RunSecret
from agent.proxy.server import ProxyServer
from agent.proxy.tunnel import gateway_proxy, tunnel_through
from attest.keys import KeyClass, KeyProvider, ProviderName

CONNECT_TIMEOUT_S = 15.0
READ_TIMEOUT_S = 600.0
"""Long gaps between streamed events are normal while a model thinks."""
START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ProxyEndpoint:
    """Where a tool reaches this run's proxy."""

    port: int
    secret: RunSecret
    upstream: Upstream

    @property
    def listen_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The listen URL with the secret as first path segment: what a tool is given."""
        return self.listen_url + self.secret.path_prefix


class SerializedKey:
    """A key provider used by one thread at a time."""

    def __init__(self, key: KeyProvider) -> None:
        self._key = key
        self._lock = threading.Lock()
        self.name: ProviderName = key.name
        self.claimed_class: KeyClass = key.claimed_class

    def public_jwk(self) -> dict[str, str]:
        """The wrapped key's public JWK."""
        return self._key.public_jwk()

    def sign(self, data: bytes) -> bytes:
        """ES256 with the wrapped key, under the lock."""
        with self._lock:
            return self._key.sign(data)

    def attestation(self, nonce: bytes) -> dict[str, Any]:
        """The wrapped key's attestation, under the lock."""
        with self._lock:
            return self._key.attestation(nonce)


def device_proof_factory(key: KeyProvider) -> ProofFactory:
    """DPoP proofs signed by the device key (``attest.dpop``, the verifier's own module); the
    header with the public key is encoded once, only the claims and signature per proof."""
    from attest.dpop import ProofSigner

    return ProofSigner(key.sign, key.public_jwk()).proof


def bind_loopback(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 only.

    ``proto`` must say TCP: asyncio disables Nagle's algorithm only on sockets that do, and
    with it on, a streamed chunk waits for a delayed ACK (40 ms) before it leaves.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class BackgroundProxy:
    """The proxy on a daemon thread; ``start`` returns once it serves with a valid token."""

    def __init__(
        self,
        *,
        upstream: Upstream,
        obtain_for: Callable[[ProxyEndpoint], ObtainToken],
        proof: ProofFactory | None,
        tls: ssl.SSLContext | None = None,
        proxy_env: Mapping[str, str] | None = None,
        port: int = 0,
        offload_signing: bool = False,
        signing_executor: Executor | None = None,
        secret: RunSecret | None = None,
        clock: Clock = time.time,
        refresh_fraction: float | None = None,
        report: Callable[[str], None] = lambda _line: None,
        on_stop: Callable[[], None] = lambda: None,
    ) -> None:
        self.upstream = upstream
        self._on_stop = on_stop
        self.secret = secret or RunSecret.generate()
        self._obtain_for = obtain_for
        self._proof = proof
        self._tls = tls
        self._proxy_env: Mapping[str, str] = proxy_env or {}
        self._port = port
        self._offload = offload_signing
        self._signing_executor = signing_executor
        self._clock = clock
        self._refresh: Mapping[str, float] = (
            {} if refresh_fraction is None else {"refresh_fraction": refresh_fraction}
        )
        self._report = report
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._endpoint: ProxyEndpoint | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="envattest-proxy", daemon=True)
        self.tokens: TokenSource | None = None

    def start(self, timeout: float = START_TIMEOUT_S) -> ProxyEndpoint:
        """Bind, attest once, serve; raises what stopped it (e.g. access denied)."""
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise TimeoutError(f"the proxy did not start within {timeout:.0f} s")
        if self._failure is not None:
            self._thread.join()
            self._on_stop()
            raise self._failure
        assert self._endpoint is not None  # set before ready without a failure
        return self._endpoint

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._on_stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # handed to the starting thread
            self._failure = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        sock = bind_loopback(self._port)
        endpoint = ProxyEndpoint(sock.getsockname()[1], self.secret, self.upstream)
        tokens = TokenSource(
            self._obtain_for(endpoint), clock=self._clock, report=self._report, **self._refresh
        )
        self.tokens = tokens
        try:
            pool = self._pool()
        except BaseException:
            sock.close()
            raise
        owned = ThreadPoolExecutor(max_workers=1) if self._offload else None
        executor = self._signing_executor or owned
        try:
            try:
                await tokens.current()  # a refusal stops here, before any tool runs
                server = ProxyServer(
                    upstream=self.upstream,
                    secret=self.secret,
                    credentials=RequestCredentials(tokens, self._proof, signing_executor=executor),
                    pool=pool,
                )
                listening = await asyncio.start_server(server.serve_connection, sock=sock)
            except BaseException:
                sock.close()
                raise
            refresher = asyncio.create_task(tokens.keep_fresh())
            self._endpoint = endpoint
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                refresher.cancel()
                listening.close()
        finally:
            await pool.aclose()
            if owned is not None:
                owned.shutdown(wait=False)

    def _pool(self) -> ConnectionPool:
        origin = Origin.parse(self.upstream.origin)
        tls = self._tls
        if tls is None and origin.scheme == "https":
            from agent.client import ssl_context

            tls = ssl_context(None)
        proxy = gateway_proxy(self._proxy_env, origin)
        return ConnectionPool(
            origin,
            tls=tls,
            connect_timeout_s=CONNECT_TIMEOUT_S,
            read_timeout_s=READ_TIMEOUT_S,
            tunnel=None if proxy is None else tunnel_through(proxy),
        )


def issued_now(access_token: str, token_type: str, expires_in: int, clock: Clock) -> IssuedToken:
    """An IssuedToken received at ``clock()``."""
    now = clock()
    return IssuedToken(access_token, token_type, issued_at=now, expires_at=now + expires_in)
