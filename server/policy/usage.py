"""Usage rules: limits on how an access token is used, checked at forward auth.

These rules read verifier-observed fields (requests per minute and distinct client networks
per token, see ``server.usage``), never anything the agent sends. At attestation they have
nothing to judge yet and pass; ``check_usage`` runs on each forward-auth request.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.policy.model import PolicyInput, RuleMode, RuleResult
from server.policy.tomltable import TomlTable

NETWORKS_RANGE = (1, 1_000)
REQUESTS_RANGE = (1, 1_000_000)


@dataclass(frozen=True)
class ObservedUsage:
    """What forward auth has seen of one token (this replica, plus others up to their last
    flush)."""

    networks: int
    requests_this_minute: int


@dataclass(frozen=True)
class UsageRule:
    """``[rules.usage]``: a token from too many networks or at too high a rate fires."""

    max_networks_per_token: int | None
    max_requests_per_minute: int | None
    mode: RuleMode = RuleMode.ENFORCE
    name: str = "usage"

    def check(self, facts: PolicyInput) -> RuleResult:
        """At attestation nothing has been observed for the new token: pass."""
        return RuleResult(self.name, self.mode, True, "usage is checked at forward auth")

    def check_usage(self, observed: ObservedUsage) -> RuleResult:
        """Pass while the token stays within both limits."""
        limit = self.max_networks_per_token
        if limit is not None and observed.networks > limit:
            return RuleResult(
                f"{self.name}.max_networks_per_token",
                self.mode,
                False,
                f"token used from {observed.networks} client networks; the limit is {limit}",
            )
        rate = self.max_requests_per_minute
        if rate is not None and observed.requests_this_minute > rate:
            return RuleResult(
                f"{self.name}.max_requests_per_minute",
                self.mode,
                False,
                f"{observed.requests_this_minute} requests this minute; the limit is {rate}",
            )
        return RuleResult(self.name, self.mode, True, "usage within limits")


USAGE_KEYS = ("max_networks_per_token", "max_requests_per_minute")


def usage_rule(table: TomlTable, mode: RuleMode) -> UsageRule:
    """Build ``[rules.usage]``; at least one limit is required."""
    values = {
        key: table.integer(key, None, bounds, unit) if key in table.data else None
        for key, bounds, unit in (
            ("max_networks_per_token", NETWORKS_RANGE, "networks"),
            ("max_requests_per_minute", REQUESTS_RANGE, "requests"),
        )
    }
    if all(v is None for v in values.values()):
        raise table.error(
            None,
            "sets no limit",
            "Set max_networks_per_token and/or max_requests_per_minute.",
        )
    return UsageRule(
        max_networks_per_token=values["max_networks_per_token"],
        max_requests_per_minute=values["max_requests_per_minute"],
        mode=mode,
    )


__all__ = ["ObservedUsage", "UsageRule", "usage_rule"]
