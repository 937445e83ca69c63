"""The proxy for this enrolled device: tokens by attestation, proofs by the device key."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import replace

from agent.collectors import CollectionContext
from agent.home import AgentHome
from agent.proxy.credentials import Clock, IssuedToken, ObtainToken
from agent.proxy.heldkey import HeldKey
from agent.proxy.rewrite import Upstream
from agent.proxy.running import (
    BackgroundProxy,
    ProxyEndpoint,
    SerializedKey,
    device_proof_factory,
    issued_now,
)
from attest.keys import KeyProvider, ProviderName


def attesting_obtainer(
    home: AgentHome,
    key: KeyProvider,
    context: CollectionContext,
    *,
    clock: Clock = time.time,
) -> ObtainToken:
    """Attest with ``context`` (the tool's environment) each time a token is needed."""
    from agent.attestation import attest_once
    from agent.client import VerifierClient

    enrollment = home.enrollment()

    def obtain() -> IssuedToken:
        client = VerifierClient(enrollment.server, ca_file=enrollment.ca_file)
        try:
            granted = attest_once(home=home, client=client, key=key, ctx=context).granted
        finally:
            client.close()
        return issued_now(granted.access_token, granted.token_type, granted.expires_in, clock)

    return obtain


def device_proxy(
    home: AgentHome,
    key: KeyProvider,
    *,
    upstream: Upstream,
    context: CollectionContext,
    environ_for: Callable[[ProxyEndpoint], Mapping[str, str]],
    ca_file: str | None = None,
    port: int = 0,
    report: Callable[[str], None] = lambda _line: None,
    refresh_fraction: float | None = None,
) -> BackgroundProxy:
    """A proxy that attests as the tool's environment ``environ_for(endpoint)`` would be seen.

    Hardware keys sign on a worker thread, one proof at a time; a TPM key keeps its session
    between proofs (``heldkey``).
    """
    from agent.client import ssl_context

    serialized: KeyProvider = SerializedKey(key)
    release: Callable[[], None] = lambda: None  # noqa: E731
    executor: Executor | None = None
    if key.name is ProviderName.TPM2:
        from attest.keys.tpm2 import Tpm2Key

        if isinstance(key, Tpm2Key):
            held = HeldKey(key, key.held_signer)
            serialized, release, executor = held, held.close, held.executor

    def obtain_for(endpoint: ProxyEndpoint) -> ObtainToken:
        seen = replace(
            context,
            env=dict(environ_for(endpoint)),
            proxied=(endpoint.listen_url, endpoint.upstream.url),
        )
        return attesting_obtainer(home, serialized, seen)

    return BackgroundProxy(
        upstream=upstream,
        obtain_for=obtain_for,
        proof=device_proof_factory(serialized),
        tls=ssl_context(ca_file) if upstream.origin.startswith("https://") else None,
        proxy_env=context.env,
        port=port,
        offload_signing=key.name is not ProviderName.SOFTWARE,
        signing_executor=executor,
        report=report,
        refresh_fraction=refresh_fraction,
        on_stop=release,
    )
