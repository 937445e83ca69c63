"""Strict token checks: a token counts only if an audited allow decision named its ``jti``.

With this, a stolen token-signing key alone cannot mint access: every token must match a
record in the hash-chained audit log. Positive answers are cached (a record never stops
having existed); misses are read again, batched on a dedicated thread.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from server.access.batch import Batcher
from server.store.access import audited_allow_jtis

MAX_REMEMBERED = 100_000


class AuditedTokens:
    """``await audited(device_id, jti, iat)``: does an audited allow name this token?"""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._known: set[tuple[str, str]] = set()
        self._reads: Batcher[tuple[str, str, int], bool] = Batcher(
            self._read, name="envattest-audited"
        )

    def _read(self, items: Sequence[tuple[str, str, int]]) -> list[bool]:
        return audited_allow_jtis(self._engine, items)

    async def __call__(self, device_id: str, jti: str, iat: int) -> bool:
        if (device_id, jti) in self._known:
            return True
        found = await self._reads.submit((device_id, jti, iat))
        if found:
            if len(self._known) >= MAX_REMEMBERED:
                self._known.clear()
            self._known.add((device_id, jti))
        return found

    def close(self) -> None:
        """Stop the reader thread."""
        self._reads.close()
