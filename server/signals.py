"""Check received signals against the catalog's value types (strict, no coercion)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import TypeAdapter, ValidationError

from attest.catalog import CATALOG, FieldId

_ADAPTERS: Mapping[FieldId, TypeAdapter[Any]] = MappingProxyType(
    {fid: TypeAdapter(field.value_type) for fid, field in CATALOG.items()}  # type: ignore[arg-type]
)
MAX_LIST_ITEMS = 256


class SignalValueError(ValueError):
    """A signal's value does not have its catalog type."""


def check_signal_values(signals: Mapping[FieldId, object]) -> None:
    """Raise SignalValueError naming the first field whose value is not of its catalog type."""
    for field_id, value in signals.items():
        adapter = _ADAPTERS.get(field_id)
        if adapter is None:
            raise SignalValueError(f"{field_id} is not a catalog field")
        if isinstance(value, list) and len(value) > MAX_LIST_ITEMS:
            raise SignalValueError(f"{field_id} has more than {MAX_LIST_ITEMS} entries")
        try:
            adapter.validate_python(value, strict=True)
        except ValidationError as exc:
            raise SignalValueError(
                f"{field_id} does not match its catalog type ({exc.error_count()} errors)"
            ) from None
