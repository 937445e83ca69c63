"""The coding-tool recipes the tests run are the ones in docs/install.md.

A block follows a marker line ``<!-- tested: NAME -->``; the tests replace only the gateway
URL (and, for Codex, nothing else).
"""

from __future__ import annotations

import re

from tests.servers import REPO

INSTALL_DOC = REPO / "docs" / "install.md"


def install_block(name: str) -> str:
    """The fenced code block after ``<!-- tested: NAME -->`` in docs/install.md."""
    found = re.search(
        rf"<!-- tested: {re.escape(name)} -->\s*\n```[a-z]*\n(.*?)\n```",
        INSTALL_DOC.read_text(),
        flags=re.DOTALL,
    )
    if found is None:
        raise AssertionError(f"docs/install.md has no block marked '<!-- tested: {name} -->'")
    return found.group(1) + "\n"


__all__ = ["INSTALL_DOC", "install_block"]
