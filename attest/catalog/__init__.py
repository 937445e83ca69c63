"""The field catalog: every field the agent can ever send, and nothing else.

One ``Field`` per signal, grouped by ``Family``. The agent refuses to send a field that is not
here, the server refuses to receive one, and ``docs/fields.md`` is generated from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NewType

from attest.errors import FormatError

FieldId = NewType("FieldId", str)


class Family(StrEnum):
    """The three signal families of DESIGN."""

    TIMEZONE = "timezone"
    PROXY = "proxy"
    BASEURL = "baseurl"


class Sensitivity(StrEnum):
    """How much a field says about a person, for the security team's review."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class Field:
    """One catalog entry. ``value_type`` is the Python type of the wire value."""

    id: FieldId
    family: Family
    value_type: object
    type_name: str
    description: str
    sensitivity: Sensitivity
    example: object
    never: str = ""


def _build() -> Mapping[FieldId, Field]:
    from attest.catalog import baseurl, proxy, timezone

    fields: dict[FieldId, Field] = {}
    for module in (timezone, proxy, baseurl):
        for entry in module.FIELDS:
            if entry.id in fields or not entry.id.startswith(entry.family.value + "."):
                raise RuntimeError(f"catalog field {entry.id} is duplicated or misnamed")
            fields[entry.id] = entry
    return fields


CATALOG: Mapping[FieldId, Field] = _build()


def field_by_id(field_id: str) -> Field:
    """The catalog entry for ``field_id``; FormatError names an unknown field."""
    try:
        return CATALOG[FieldId(field_id)]
    except KeyError:
        raise FormatError(f"{field_id!r} is not a catalog field") from None


def fields_of(family: Family) -> tuple[Field, ...]:
    """Catalog fields of one family, in catalog order."""
    return tuple(f for f in CATALOG.values() if f.family is family)


__all__ = ["CATALOG", "Family", "Field", "FieldId", "Sensitivity", "field_by_id", "fields_of"]
