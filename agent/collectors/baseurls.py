"""Base-URL collector (placeholder until the base-URL family lands: collects nothing)."""

from __future__ import annotations

from agent.collectors import CollectionContext
from attest.catalog import FieldId


def collect(ctx: CollectionContext, wanted: frozenset[FieldId]) -> dict[FieldId, object]:
    """The base-URL family."""
    return {}
