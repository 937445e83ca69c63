"""The catalog is the single source of truth for what can ever be sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from attest.catalog import CATALOG, Family, field_by_id, fields_of
from attest.catalog.docs import render_markdown
from attest.errors import FormatError
from attest.evidence import ConsentClaim, new_claims

DOCS = Path(__file__).resolve().parents[2] / "docs" / "fields.md"


def test_checked_in_field_docs_are_current() -> None:
    assert DOCS.read_text(encoding="utf-8") == render_markdown(), (
        "docs/fields.md is stale: run 'envattest fields --markdown > docs/fields.md'"
    )


def test_every_family_has_fields_and_every_field_is_documented() -> None:
    for family in Family:
        assert fields_of(family), family
    for field in CATALOG.values():
        assert field.description.strip()
        assert field.type_name.strip()
        assert field.id.startswith(field.family.value + ".")


def test_unknown_field_is_an_error() -> None:
    with pytest.raises(FormatError, match="not a catalog field"):
        field_by_id("hostname")


def test_agent_cannot_build_evidence_with_a_field_outside_the_catalog() -> None:
    consent = ConsentClaim("a" * 64, 0, ())
    with pytest.raises(FormatError, match="'username' is not a catalog field"):
        new_claims(nonce="n", device_id="d", consent=consent, signals={"username": "x"}, now=0)


def test_catalog_examples_match_their_declared_types() -> None:
    from server.signals import check_signal_values

    check_signal_values({fid: f.example for fid, f in CATALOG.items()})
