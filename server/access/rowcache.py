"""Device and gateway-credential rows cached per process, revocation effective at once.

Every check first reads the revocation epoch, a one-row table that database triggers bump on
any change to a device or credential (revocation by the admin CLI, ``forget``, another
replica). The read is batched (``server.access.batch``): one primary-key SELECT serves every
request that arrived while the previous one ran, and always starts after the request arrived.
A changed epoch empties the cache, so a request that starts after a revocation commits is
refused on every replica; no time-to-live window exists. A DPoP request's proof id is spent
in the same database round (``server.store.access.AccessRound``), so checking a proof costs
no extra trip to the database thread.

A row is cached only under the epoch read before it was fetched, and only if that epoch is
still current when it arrives: a row read before a revocation can never outlive it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from server.access.batch import Batcher
from server.store import DeviceRecord
from server.store.access import AccessRound, Database, read_credentials, read_devices
from server.store.sql import GatewayCredentialRecord

Table = Literal["device", "credential"]
Row = DeviceRecord | GatewayCredentialRecord
Spend = tuple[str, int] | None  # a proof id to spend in the round, and when it expires
MAX_CACHED_ROWS = 100_000


class RowCache:
    """Devices and credentials by id, dropped wholesale whenever the epoch moves."""

    def __init__(self, database: Database, *, max_rows: int = MAX_CACHED_ROWS) -> None:
        self._database = database
        self._max_rows = max_rows
        self._epoch = -1
        self._rows: dict[tuple[Table, str], Row] = {}
        self._round = AccessRound(database)
        self._rounds: Batcher[Spend, tuple[int, bool]] = Batcher(
            self._run_round, name="envattest-epoch"
        )
        self._reads: Batcher[tuple[Table, str], Row | None] = Batcher(
            self._read_rows, name="envattest-rows"
        )

    def _run_round(self, items: Sequence[Spend]) -> list[tuple[int, bool]]:
        spend: dict[str, int] = {}
        for item in items:
            if item is not None:
                spend.setdefault(*item)
        epoch, fresh = self._round.run(spend)
        answers = []
        for item in items:
            # a key repeated within the batch is fresh once, for its first request
            new = item is not None and item[0] in fresh
            if new and item is not None:
                fresh.discard(item[0])
            answers.append((epoch, new))
        return answers

    def _read_rows(self, items: Sequence[tuple[Table, str]]) -> list[Row | None]:
        device_ids = [key for table, key in items if table == "device"]
        credential_ids = [key for table, key in items if table == "credential"]
        found: dict[tuple[Table, str], Row] = {}
        if device_ids:
            found.update(
                (("device", k), v)
                for k, v in read_devices(self._database.engine, device_ids).items()
            )
        if credential_ids:
            found.update(
                (("credential", k), v)
                for k, v in read_credentials(self._database.engine, credential_ids).items()
            )
        return [found.get(item) for item in items]

    def _observe(self, epoch: int) -> int:
        if epoch != self._epoch:
            self._rows.clear()
            self._epoch = epoch
        return epoch

    async def epoch(self) -> int:
        """The revocation epoch from a read that started after this call. A request that
        looks up several rows reads it once and passes it to each lookup."""
        epoch = self._round.epoch_at_once()
        if epoch is None:
            epoch, _ = await self._rounds.submit(None)
        return self._observe(epoch)

    async def epoch_spending(self, key: str, *, expires_at: int) -> tuple[int, bool]:
        """``epoch()``, with the DPoP proof id ``key`` spent in the same round: True if no
        replica or process had spent it."""
        epoch, fresh = await self._rounds.submit((key, expires_at))
        return self._observe(epoch), fresh

    async def _row(self, table: Table, key: str, epoch: int | None) -> Row | None:
        # an epoch this request already read is as fresh as a new read, as long as the cache
        # still holds that epoch (it is emptied whenever the epoch moves)
        if epoch is None or epoch != self._epoch:
            epoch = await self.epoch()
        cached = self._rows.get((table, key))
        if cached is not None:
            return cached
        row = await self._reads.submit((table, key))
        # unknown ids are not cached: an enrollment inserts without moving the epoch
        if row is not None and epoch == self._epoch:
            if len(self._rows) >= self._max_rows:
                self._rows.clear()
            self._rows[(table, key)] = row
        return row

    async def device(self, device_id: str, *, epoch: int | None = None) -> DeviceRecord | None:
        """The device as of a read that started after this call (or after the request that
        read ``epoch`` arrived), or None if unknown."""
        row = await self._row("device", device_id, epoch)
        return row if isinstance(row, DeviceRecord) else None

    async def credential(
        self, credential_id: str, *, epoch: int | None = None
    ) -> GatewayCredentialRecord | None:
        """The gateway credential, fresh in the same sense as ``device``."""
        row = await self._row("credential", credential_id, epoch)
        return row if isinstance(row, GatewayCredentialRecord) else None

    def close(self) -> None:
        """Stop the reader threads."""
        self._rounds.close()
        self._reads.close()
