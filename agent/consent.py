"""Informed consent: show each requested field with this machine's value, record the answer.

Consent names the exact manifest (its SHA-256) and the fields agreed to. A changed manifest,
a revoked consent or a field outside it means nothing is collected until the user agrees again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from agent.errors import ConsentRequiredError
from agent.home import ConsentRecord
from attest.manifest import FieldMode, Manifest


def choose_fields(
    manifest: Manifest, *, only: Iterable[str] = (), exclude: Iterable[str] = ()
) -> tuple[str, ...]:
    """The manifest's fields, narrowed by ``only`` / ``exclude``; unknown names are errors."""
    requested = [r.field.id for r in manifest.fields]
    only_set, exclude_set = set(only), set(exclude)
    unknown = sorted((only_set | exclude_set) - set(requested))
    if unknown:
        raise ConsentRequiredError(
            f"not requested by this verifier: {', '.join(unknown)}; see 'envattest fields'"
        )
    return tuple(f for f in requested if (not only_set or f in only_set) and f not in exclude_set)


def _example(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 160 else text[:157] + "..."


def render_prompt(manifest: Manifest, examples: Mapping[str, object], *, server: str) -> list[str]:
    """The lines shown before asking: every field, what it is, its value here, why, how long."""
    lines = [
        f"The verifier at {server} asks for the following fields.",
        f"Manifest SHA-256: {manifest.sha256}",
        "",
    ]
    for req in manifest.fields:
        field = req.field
        required = "required for access" if req.mode is FieldMode.ENFORCE else "reported only"
        lines.append(f"* {field.id} ({required}, kept {req.retention_days} days)")
        lines.append(f"    what: {field.description}")
        if field.id in examples:
            lines.append(f"    this machine: {_example(examples[field.id])}")
        lines.append(f"    why:  {req.purpose}")
        if field.never:
            lines.append(f"    never sent: {field.never}")
    if manifest.observed:
        lines += ["", "The verifier also records, at its gateway (nothing collected here):"]
        for obs in manifest.observed:
            lines.append(
                f"* {obs.field.id} (observed by the verifier, kept {obs.retention_days} days)"
            )
            lines.append(f"    what: {obs.field.description}")
            lines.append(f"    how:  {obs.field.how}")
            lines.append(f"    why:  {obs.purpose}")
    lines += [
        "",
        "Nothing else is collected. You can review what was sent ('envattest log'), see what the",
        "verifier holds ('envattest whoami'), and withdraw ('envattest consent --revoke',",
        "'envattest forget') at any time.",
    ]
    return lines


def require_consent(
    record: ConsentRecord | None, manifest_sha256: str | None = None
) -> ConsentRecord:
    """The active consent, or ConsentRequiredError saying what to run."""
    if record is None:
        raise ConsentRequiredError("consent required: run 'envattest consent'")
    if not record.active:
        raise ConsentRequiredError(
            "consent was revoked, so nothing is collected or sent; run 'envattest consent' "
            "to grant it again"
        )
    if manifest_sha256 is not None and record.manifest_sha256 != manifest_sha256:
        raise ConsentRequiredError(
            "consent required: the verifier's manifest changed; run 'envattest consent'"
        )
    return record
