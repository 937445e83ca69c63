"""The minimal default policy written by ``envattest-server init``."""

from __future__ import annotations

from attest.keys import KeyClass
from server.policy.model import Policy
from server.policy.rules import ClockSkewRule, KeyClassRule, RequiredFieldsRule


def default_policy() -> Policy:
    """Allow any key class, require the manifest's enforce fields, bound clock skew."""
    return Policy(
        version="default-1",
        rules=(
            KeyClassRule(allowed=frozenset(KeyClass)),
            ClockSkewRule(max_skew_s=300),
            RequiredFieldsRule(),
        ),
    )
