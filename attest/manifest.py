"""The consent manifest: which catalog fields a verifier requests, why, and for how long.

Its identity is the SHA-256 of the exact bytes served; consent names that hash, so any change
to the manifest, even whitespace, needs new consent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any

from attest.catalog import Field, FieldId, field_by_id
from attest.catalog.observed import ObservedField, observed_field
from attest.errors import FormatError

MANIFEST_VERSION = 1
MAX_MANIFEST_BYTES = 256 * 1024


class FieldMode(StrEnum):
    """``enforce``: required for access and checked by policy; ``report``: optional, logged."""

    ENFORCE = "enforce"
    REPORT = "report"


@dataclass(frozen=True)
class RequestedField:
    """One field the verifier asks for, with its stated purpose and retention."""

    field: Field
    purpose: str
    retention_days: int
    mode: FieldMode


@dataclass(frozen=True)
class ObservedRequest:
    """A verifier-observed field the verifier declares it records, why, and for how long."""

    field: ObservedField
    purpose: str
    retention_days: int


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest and the hash of the exact bytes it came from."""

    sha256: str
    verifier: str
    fields: tuple[RequestedField, ...]
    raw: bytes
    observed: tuple[ObservedRequest, ...] = ()

    def requested(self, field_id: str) -> RequestedField | None:
        """The request for ``field_id``, if the manifest makes one."""
        return next((r for r in self.fields if r.field.id == field_id), None)

    @cached_property
    def field_ids(self) -> frozenset[str]:
        """Every field id the manifest requests."""
        return frozenset(r.field.id for r in self.fields)

    @cached_property
    def enforced_ids(self) -> frozenset[FieldId]:
        """The ids of the fields requested in ``enforce`` mode."""
        return frozenset(r.field.id for r in self.fields if r.mode is FieldMode.ENFORCE)


def manifest_sha256(raw: bytes) -> str:
    """Hex SHA-256 of the exact manifest bytes."""
    return hashlib.sha256(raw).hexdigest()


def _requested_field(entry: Any, index: int) -> RequestedField:
    where = f"manifest field #{index + 1}"
    if not isinstance(entry, dict):
        raise FormatError(f"{where} must be an object")
    field = field_by_id(entry.get("id", ""))
    purpose = entry.get("purpose")
    retention = entry.get("retention_days")
    if not isinstance(purpose, str) or not purpose.strip():
        raise FormatError(f"{where} ({field.id}) needs a non-empty purpose")
    if isinstance(retention, bool) or not isinstance(retention, int) or retention < 0:
        raise FormatError(f"{where} ({field.id}) needs retention_days, a whole number >= 0")
    try:
        mode = FieldMode(str(entry.get("mode")))
    except ValueError:
        raise FormatError(f"{where} ({field.id}) mode must be 'enforce' or 'report'") from None
    return RequestedField(field=field, purpose=purpose, retention_days=retention, mode=mode)


def _observed_request(entry: Any, index: int) -> ObservedRequest:
    where = f"manifest observed field #{index + 1}"
    if not isinstance(entry, dict):
        raise FormatError(f"{where} must be an object")
    field = observed_field(str(entry.get("id", "")))
    purpose = entry.get("purpose")
    retention = entry.get("retention_days")
    if not isinstance(purpose, str) or not purpose.strip():
        raise FormatError(f"{where} ({field.id}) needs a non-empty purpose")
    if isinstance(retention, bool) or not isinstance(retention, int) or retention < 0:
        raise FormatError(f"{where} ({field.id}) needs retention_days, a whole number >= 0")
    return ObservedRequest(field=field, purpose=purpose, retention_days=retention)


def _observed(doc: dict[str, Any]) -> tuple[ObservedRequest, ...]:
    entries = doc.get("observed", [])
    if not isinstance(entries, list):
        raise FormatError("manifest observed must be a list")
    observed = tuple(_observed_request(e, i) for i, e in enumerate(entries))
    if len({o.field.id for o in observed}) != len(observed):
        raise FormatError("manifest lists an observed field twice")
    return observed


def parse_manifest(raw: bytes) -> Manifest:
    """Parse untrusted manifest bytes; every field must be a catalog field, once."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise FormatError("manifest is larger than 256 KiB")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"manifest is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("manifest_version") != MANIFEST_VERSION:
        raise FormatError(f"manifest must be an object with manifest_version {MANIFEST_VERSION}")
    entries = doc.get("fields")
    if not isinstance(entries, list) or not entries:
        raise FormatError("manifest must request at least one field")
    fields = tuple(_requested_field(e, i) for i, e in enumerate(entries))
    ids = [f.field.id for f in fields]
    if len(set(ids)) != len(ids):
        raise FormatError("manifest requests a field twice")
    verifier = doc.get("verifier", "")
    if not isinstance(verifier, str):
        raise FormatError("manifest verifier must be a string")
    return Manifest(
        sha256=manifest_sha256(raw),
        verifier=verifier,
        fields=fields,
        raw=raw,
        observed=_observed(doc),
    )


def render_manifest(
    verifier: str, fields: list[dict[str, Any]], observed: list[dict[str, Any]] | None = None
) -> bytes:
    """Serialize a manifest document (pretty, stable) for a verifier to serve; ``observed``
    lists the verifier-observed fields it records (purpose, retention)."""
    doc: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "verifier": verifier,
        "fields": fields,
    }
    if observed:
        doc["observed"] = observed
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()
