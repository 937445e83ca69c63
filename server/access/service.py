"""The relying-party side of one verifier process: checker, usage, background upkeep.

Built once per process (``server.runtime``). ``start`` runs the upkeep task on the event loop:
usage flushes every ``usage_flush_s`` and, every minute, pruning of expired DPoP proof ids and
of usage past its retention. Database work never runs on the event loop thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress

from server.access.proofs import DpopNonces, ProofReplayStore, parse_external_url
from server.access.rowcache import RowCache
from server.access.strict import AuditedTokens
from server.config import ServerConfig
from server.errors import ConfigError, ServerError
from server.introspection import TokenChecker
from server.policy import Policy
from server.store import AuditEvent, AuditRecord
from server.store.sql import SqlStore
from server.tokens import TokenIssuer
from server.usage.enforce import UsageEnforcer
from server.usage.observer import UsageObserver
from server.usage.store import prune_usage

log = logging.getLogger("envattest.server")
PRUNE_EVERY_S = 60
TOKEN_CHECK_MODES = ("standard", "strict")


class AccessService:
    """What forward auth and introspection use, per process."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        store: SqlStore,
        issuer: TokenIssuer,
        policy: Callable[[], Policy],
        usage_retention_days: Callable[[], int],
        clock: Callable[[], float] = time.time,
    ) -> None:
        if config.token_check not in TOKEN_CHECK_MODES:
            raise ConfigError(
                f"token_check must be 'standard' or 'strict', not {config.token_check!r}"
            )
        if config.usage_flush_s < 1 or config.dpop_max_age_s < 1 or config.dpop_nonce_ttl_s < 0:
            raise ConfigError(
                "usage_flush_s and dpop_max_age_s must be >= 1, dpop_nonce_ttl_s >= 0"
            )
        self._store = store
        self._clock = clock
        self._retention_days = usage_retention_days
        self.external_url = (
            parse_external_url(config.authz_external_url) if config.authz_external_url else ""
        )
        self.rows = RowCache(store)
        self.replay = ProofReplayStore(store, self.rows)
        self.nonces = DpopNonces(lambda: issuer.ring, ttl_s=config.dpop_nonce_ttl_s, clock=clock)
        self.audited = AuditedTokens(store) if config.token_check == "strict" else None  # noqa: S105
        self.checker = TokenChecker(
            issuer=issuer,
            rows=self.rows,
            replay=self.replay,
            nonces=self.nonces,
            policy=policy,
            audience=config.authz_audience,
            dpop_max_age_s=config.dpop_max_age_s,
            strict=self.audited,
            clock=clock,
        )
        self._upkeep = ThreadPoolExecutor(max_workers=1, thread_name_prefix="envattest-upkeep")
        self._stopped = False
        self.usage = UsageEnforcer(
            UsageObserver(store, clock=clock), policy=policy, audit=self._audit_later
        )
        self._flush_s = config.usage_flush_s
        self._task: asyncio.Task[None] | None = None

    def _audit_later(self, event: AuditEvent) -> None:
        def report(done: Future[AuditRecord]) -> None:
            if done.exception() is not None:
                log.error("usage audit record not written: %s", done.exception())

        self._upkeep.submit(self._store.append_audit, event).add_done_callback(report)

    async def start(self) -> None:
        """Start the upkeep task (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._upkeep_forever())

    async def stop(self) -> None:
        """Flush usage one last time and stop the threads (once: the shutdown handler can
        run for every router the app includes)."""
        if self._stopped:
            return
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with suppress(ServerError):
            await self.flush()
        self.rows.close()
        if self.audited is not None:
            self.audited.close()
        self._upkeep.shutdown(wait=True)

    async def flush(self) -> None:
        """Write this process's usage deltas and read back every replica's totals."""
        observer = self.usage.observer
        deltas, jtis, minute = observer.begin_flush()
        loop = asyncio.get_running_loop()
        try:
            totals = await loop.run_in_executor(self._upkeep, observer.write, deltas, jtis, minute)
        except BaseException:
            observer.abort_flush()
            raise
        observer.finish_flush(totals)

    def _prune(self) -> None:
        now = int(self._clock())
        self.replay.prune(now=now)
        prune_usage(self._store.engine, before=now - self._retention_days() * 86_400)

    async def _upkeep_forever(self) -> None:
        loop = asyncio.get_running_loop()
        pruned = 0.0
        while True:
            await asyncio.sleep(self._flush_s)
            try:
                await self.flush()
                if time.monotonic() - pruned >= PRUNE_EVERY_S:
                    await loop.run_in_executor(self._upkeep, self._prune)
                    pruned = time.monotonic()
            except ServerError as exc:
                log.warning("usage flush or pruning failed, retrying next interval: %s", exc)
