"""Check received signals against the catalog's closed, bounded value types (no coercion).

The shapes are ``attest.catalog.values``, the same definitions the agent builds from: an
object with a member its shape does not declare, a string past its bound or outside its
alphabet, a list of more than ``MAX_ITEMS`` entries, a port outside 1-65535 or a value of
another type (``true`` for a number, ``1`` for a boolean) is refused before any rule runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from pydantic import TypeAdapter, ValidationError
from pydantic_core import SchemaValidator

from attest.catalog import CATALOG, FieldId
from attest.catalog.values import MAX_ITEMS

# each field's compiled validator, called directly: TypeAdapter.validate_python's Python
# wrapper cost as much as the validation itself (15 fields per attestation)
_VALIDATORS: Mapping[FieldId, SchemaValidator] = MappingProxyType(
    {
        fid: TypeAdapter(field.value_type).validator  # type: ignore[arg-type,misc]
        for fid, field in CATALOG.items()
    }
)
MAX_LIST_ITEMS = MAX_ITEMS


class SignalValueError(ValueError):
    """A signal's value does not have its catalog type."""


def check_signal_values(signals: Mapping[FieldId, object]) -> None:
    """Raise SignalValueError naming the first field whose value is not of its catalog type."""
    for field_id, value in signals.items():
        validator = _VALIDATORS.get(field_id)
        if validator is None:
            raise SignalValueError(f"{field_id} is not a catalog field")
        try:
            validator.validate_python(value, strict=True)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise SignalValueError(
                f"{field_id} does not match its catalog type"
                f" ({exc.error_count()} errors; first at {where or 'the value'}: {first['type']})"
            ) from None
