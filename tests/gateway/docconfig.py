"""The gateway configurations the tests run are the ones in docs/gateways.md.

Each tested block in the document follows a marker line ``<!-- tested: NAME -->``; a test
takes the fenced block after it and swaps only the addresses, ports and file paths that differ
on a test machine. A replaced string that is no longer in the document fails the test, so the
document cannot drift from what runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from tests.servers import REPO

GATEWAYS_DOC = REPO / "docs" / "gateways.md"


def tested_block(name: str) -> str:
    """The fenced code block that follows ``<!-- tested: NAME -->`` in docs/gateways.md."""
    text = GATEWAYS_DOC.read_text()
    found = re.search(
        rf"<!-- tested: {re.escape(name)} -->\s*\n```[a-z]*\n(.*?)\n```", text, flags=re.DOTALL
    )
    if found is None:
        raise AssertionError(f"docs/gateways.md has no block marked '<!-- tested: {name} -->'")
    return found.group(1) + "\n"


def for_this_machine(block: str, replacements: Mapping[str, str]) -> str:
    """``block`` with each documented address or path replaced by the test's own."""
    for documented, local in replacements.items():
        if documented not in block:
            raise AssertionError(f"docs/gateways.md no longer contains {documented!r}")
        block = block.replace(documented, local)
    return block


__all__ = ["GATEWAYS_DOC", "for_this_machine", "tested_block"]
