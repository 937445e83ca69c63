"""Errors raised while loading a policy file or reading evidence for ``policy explain``.

PolicyError
├── PolicySyntaxError      the file is not valid TOML
├── PolicySchemaError      valid TOML that is not a valid policy (unknown key, wrong type,
│                          bad enum value, bad glob, missing version, no rules, ...)
└── EvidenceInputError     an evidence file given to ``policy explain`` cannot be read

Every message names the file, the line and the key path, and says what to do next.
"""

from __future__ import annotations


class PolicyError(Exception):
    """Base class of every policy error; ``str()`` is a complete message for a person."""

    def __init__(
        self,
        problem: str,
        *,
        source: str,
        fix: str,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.problem = problem
        self.source = source
        self.fix = fix
        self.line = line
        self.key = key
        where = source if line is None else f"{source}, line {line}"
        what = problem if key is None else f"{key}: {problem}"
        super().__init__(f"{where}: {what}. {fix}")


class PolicySyntaxError(PolicyError):
    """The policy file is not valid TOML."""


class PolicySchemaError(PolicyError):
    """The policy file is valid TOML but not a valid policy."""


class EvidenceInputError(PolicyError):
    """An evidence file for offline explain is neither a compact JWS nor claims JSON."""


__all__ = ["EvidenceInputError", "PolicyError", "PolicySchemaError", "PolicySyntaxError"]
