"""Render the catalog for people: plain text for the CLI, Markdown for docs/fields.md."""

from __future__ import annotations

import json

from attest.catalog import CATALOG, Family
from attest.catalog.observed import OBSERVED


def render_text() -> str:
    """One block per field."""
    lines = []
    for field in CATALOG.values():
        lines.append(f"{field.id}  [{field.type_name}; sensitivity {field.sensitivity.value}]")
        lines.append(f"    {field.description}")
        if field.never:
            lines.append(f"    never sent: {field.never}")
    for obs in OBSERVED.values():
        lines.append(f"{obs.id}  [{obs.type_name}; verifier-observed, not sent by the agent]")
        lines.append(f"    {obs.description}")
        lines.append(f"    how: {obs.how}")
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
    out += [
        "## verifier-observed",
        "",
        "Not collected on the machine and never sent by the agent: the verifier records these at",
        "forward auth. A manifest lists the ones it records under `observed`, with purpose and",
        "retention; the agent shows them at consent, and `envattest whoami` shows the values held.",
        "",
        "| field | type | sensitivity | description | how observed | example |",
        "|---|---|---|---|---|---|",
    ]
    for obs in OBSERVED.values():
        cells = [
            f"`{obs.id}`",
            obs.type_name,
            obs.sensitivity.value,
            obs.description,
            obs.how,
            f"`{json.dumps(obs.example, sort_keys=True)}`",
        ]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    out.append("")
    return "\n".join(out)
