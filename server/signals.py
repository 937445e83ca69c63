"""Check received signals against the catalog's closed, bounded value types (no coercion).

The shapes are ``attest.catalog.values``, the same definitions the agent builds from: an
object with a member its shape does not declare, a string past its bound or outside its
alphabet, a list of more than ``MAX_ITEMS`` entries, a port outside 1-65535 or a value of
another type (``true`` for a number, ``1`` for a boolean) is refused before any rule runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import TypeAdapter, ValidationError

from attest.catalog import CATALOG, FieldId
from attest.catalog.values import MAX_ITEMS

_ADAPTERS: Mapping[FieldId, TypeAdapter[Any]] = MappingProxyType(
    {fid: TypeAdapter(field.value_type) for fid, field in CATALOG.items()}  # type: ignore[arg-type]
)
MAX_LIST_ITEMS = MAX_ITEMS


class SignalValueError(ValueError):
    """A signal's value does not have its catalog type."""


def check_signal_values(signals: Mapping[FieldId, object]) -> None:
    """Raise SignalValueError naming the first field whose value is not of its catalog type."""
    for field_id, value in signals.items():
        adapter = _ADAPTERS.get(field_id)
        if adapter is None:
            raise SignalValueError(f"{field_id} is not a catalog field")
        try:
            adapter.validate_python(value, strict=True)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise SignalValueError(
                f"{field_id} does not match its catalog type"
                f" ({exc.error_count()} errors; first at {where or 'the value'}: {first['type']})"
            ) from None
