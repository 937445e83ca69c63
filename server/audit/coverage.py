"""Which emptied records a purge or erasure event accounts for.

Retention purges and device erasures null a record's ``data`` (the chain keeps its digest).
Each does so in the same transaction as an audit event whose data says what it emptied, in
a top-level ``covers`` member written by the store:

- ``{"seq_ranges": [[first, last], ...]}``: a retention purge of those records;
- ``{"device_id": D}``: an erasure of every record of device D before the event.

An erasure of D also empties earlier erasure events of D; the latest one covers them. Purge
events carry no device, so nothing ever empties them.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Any

from server.store import AuditRecord

PURGE_EVENT = "admin.purge"
ERASURE_EVENTS = frozenset({"admin.device.erase", "device.erased"})
COVERING_EVENTS = frozenset({PURGE_EVENT, *ERASURE_EVENTS})


def seq_ranges(seqs: Iterable[int]) -> list[list[int]]:
    """Sorted sequence numbers as closed ranges: [1,2,3,7] -> [[1,3],[7,7]]."""
    ranges: list[list[int]] = []
    for seq in sorted(set(seqs)):
        if ranges and ranges[-1][1] == seq - 1:
            ranges[-1][1] = seq
        else:
            ranges.append([seq, seq])
    return ranges


def purge_covers(seqs: Sequence[int]) -> dict[str, Any]:
    """The ``covers`` member of a purge event emptying ``seqs``."""
    return {"seq_ranges": seq_ranges(seqs)}


def erasure_covers(device_id: str) -> dict[str, Any]:
    """The ``covers`` member of an erasure event of ``device_id``."""
    return {"device_id": device_id}


class Coverage:
    """What the covering events of one chain account for; built from those events only."""

    def __init__(self, events: Iterable[AuditRecord]) -> None:
        self._erased_before: dict[str, int] = {}
        ranges: list[list[int]] = []
        for event in events:
            covers = (event.data or {}).get("covers")
            if event.event not in COVERING_EVENTS or not isinstance(covers, dict):
                continue
            device = covers.get("device_id")
            if event.event in ERASURE_EVENTS and device and device == event.device_id:
                self._erased_before[device] = max(self._erased_before.get(device, 0), event.seq)
            for pair in covers.get("seq_ranges", ()) if event.event == PURGE_EVENT else ():
                # a purge accounts only for records written before it
                if _is_range(pair) and pair[1] < event.seq:
                    ranges.append([pair[0], pair[1]])
        self._ranges = _merged(ranges)
        self._firsts = [r[0] for r in self._ranges]

    def covers(self, record: AuditRecord) -> bool:
        """True if a later event emptied ``record`` on purpose."""
        device = record.device_id
        if device is not None and record.seq < self._erased_before.get(device, 0):
            return True
        i = bisect.bisect_right(self._firsts, record.seq) - 1
        return i >= 0 and self._ranges[i][1] >= record.seq


def _is_range(pair: Any) -> bool:
    return (
        isinstance(pair, list)
        and len(pair) == 2
        and all(type(x) is int for x in pair)
        and 1 <= pair[0] <= pair[1]
    )


def _merged(ranges: list[list[int]]) -> list[list[int]]:
    merged: list[list[int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return merged
