"""Big-endian TPM wire reading and writing (Part 1 §18 "Marshaling"), bounds-checked.

Every parser reads untrusted bytes through ``WireReader``; a short buffer or trailing bytes is a
``TpmStructureError`` naming the structure, never an ``IndexError`` or a silent truncation.
"""

from __future__ import annotations

from attest.tpm.errors import TpmStructureError


class WireReader:
    """Reads TPM integers and sized buffers from ``data``, refusing reads past the end."""

    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._pos = 0
        self._what = what

    @property
    def position(self) -> int:
        """Offset of the next unread byte."""
        return self._pos

    def take(self, size: int) -> bytes:
        """The next ``size`` bytes."""
        end = self._pos + size
        if size < 0 or end > len(self._data):
            raise TpmStructureError(f"{self._what} is truncated at offset {self._pos}")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def u8(self) -> int:
        """UINT8."""
        return self.take(1)[0]

    def u16(self) -> int:
        """UINT16, big-endian."""
        return int.from_bytes(self.take(2), "big")

    def u32(self) -> int:
        """UINT32, big-endian."""
        return int.from_bytes(self.take(4), "big")

    def u64(self) -> int:
        """UINT64, big-endian."""
        return int.from_bytes(self.take(8), "big")

    def tpm2b(self) -> bytes:
        """A TPM2B: UINT16 size then that many bytes."""
        return self.take(self.u16())

    def finish(self) -> None:
        """Refuse trailing bytes: the structure must be exactly the buffer."""
        if self._pos != len(self._data):
            raise TpmStructureError(
                f"{self._what} has {len(self._data) - self._pos} trailing bytes"
            )


def tpm2b(data: bytes) -> bytes:
    """Marshal ``data`` as a TPM2B (UINT16 size prefix)."""
    if len(data) > 0xFFFF:
        raise ValueError("a TPM2B holds at most 65535 bytes")
    return len(data).to_bytes(2, "big") + data
