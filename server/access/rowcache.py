"""Device and gateway-credential rows cached per process, revocation effective at once.

Every check first reads the revocation epoch, a one-row table that database triggers bump on
any change to a device or credential (revocation by the admin CLI, ``forget``, another
replica). The read is batched (``server.access.batch``): one primary-key SELECT serves every
request that arrived while the previous one ran, and always starts after the request arrived.
A changed epoch empties the cache, so a request that starts after a revocation commits is
refused on every replica; no time-to-live window exists.

A row is cached only under the epoch read before it was fetched, and only if that epoch is
still current when it arrives: a row read before a revocation can never outlive it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from server.access.batch import Batcher
from server.store import DeviceRecord
from server.store.access import Database, EpochReader, read_credentials, read_devices
from server.store.sql import GatewayCredentialRecord

Table = Literal["device", "credential"]
Row = DeviceRecord | GatewayCredentialRecord
MAX_CACHED_ROWS = 100_000


class RowCache:
    """Devices and credentials by id, dropped wholesale whenever the epoch moves."""

    def __init__(self, database: Database, *, max_rows: int = MAX_CACHED_ROWS) -> None:
        self._database = database
        self._max_rows = max_rows
        self._epoch = -1
        self._epoch_reader = EpochReader(database)
        self._rows: dict[tuple[Table, str], Row] = {}
        self._epochs: Batcher[None, int] = Batcher(self._read_epochs, name="envattest-epoch")
        self._reads: Batcher[tuple[Table, str], Row | None] = Batcher(
            self._read_rows, name="envattest-rows"
        )

    def _read_epochs(self, items: Sequence[None]) -> list[int]:
        epoch = self._epoch_reader.read()
        return [epoch] * len(items)

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

    async def _current(self) -> int:
        epoch = await self._epochs.submit(None)
        if epoch != self._epoch:
            self._rows.clear()
            self._epoch = epoch
        return epoch

    async def _row(self, table: Table, key: str) -> Row | None:
        epoch = await self._current()
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

    async def device(self, device_id: str) -> DeviceRecord | None:
        """The device as of a read that started after this call, or None if unknown."""
        row = await self._row("device", device_id)
        return row if isinstance(row, DeviceRecord) else None

    async def credential(self, credential_id: str) -> GatewayCredentialRecord | None:
        """The gateway credential, fresh in the same sense as ``device``."""
        row = await self._row("credential", credential_id)
        return row if isinstance(row, GatewayCredentialRecord) else None

    def close(self) -> None:
        """Stop the reader threads."""
        self._epochs.close()
        self._reads.close()
