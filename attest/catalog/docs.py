"""Render the catalog for people: plain text for the CLI, Markdown for docs/fields.md."""

from __future__ import annotations

import json

from attest.catalog import CATALOG, Family


def render_text() -> str:
    """One block per field."""
    lines = []
    for field in CATALOG.values():
        lines.append(f"{field.id}  [{field.type_name}; sensitivity {field.sensitivity.value}]")
        lines.append(f"    {field.description}")
        if field.never:
            lines.append(f"    never sent: {field.never}")
    return "\n".join(lines) + "\n"


def render_markdown() -> str:
    """The generated docs/fields.md (a test keeps the checked-in copy current)."""
    out = [
        "# envattest field catalog",
        "",
        "Generated from `attest/catalog` by `envattest fields --markdown`; do not edit by hand.",
        "The agent cannot send any field that is not listed here, and the verifier refuses one.",
        "",
    ]
    for family in Family:
        out += [
            f"## {family.value}",
            "",
            "| field | type | sensitivity | description | never sent | example |",
        ]
        out.append("|---|---|---|---|---|---|")
        for field in CATALOG.values():
            if field.family is not family:
                continue
            cells = [
                f"`{field.id}`",
                field.type_name,
                field.sensitivity.value,
                field.description,
                field.never or "-",
                f"`{json.dumps(field.example, sort_keys=True)}`",
            ]
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        out.append("")
    return "\n".join(out)
