"""Base-URL rule: where coding tools send API traffic; a relay shows up here.

Each base URL in ``baseurl.env`` and ``baseurl.tools`` must be allowed by its classification
(``official`` by default; ``localhost`` and ``private-network`` only when switched on) or by a
host glob in ``allowed_hosts``. The classification is the agent's; ``allowed_hosts`` is matched
against the host itself. No base URL at all passes: the tools then use their own defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from attest.catalog import FieldId
from server.policy.globs import Glob, first_match
from server.policy.model import PolicyInput, RuleMode, RuleResult
from server.policy.signals import (
    HostEntry,
    listing,
    sent_host_entries,
)

BASEURL_FIELDS = (FieldId("baseurl.env"), FieldId("baseurl.tools"))


@dataclass(frozen=True)
class BaseUrlRule:
    """Every reported base URL must be official, an allowed kind of local, or an allowed host."""

    allowed_hosts: tuple[Glob, ...] = ()
    allow_official: bool = True
    allow_localhost: bool = False
    allow_private_network: bool = False
    unsafe_allow_any_host: bool = False
    fields: tuple[FieldId, ...] = BASEURL_FIELDS
    unsafe_pass_if_not_sent: bool = False
    mode: RuleMode = RuleMode.ENFORCE
    name: str = "base_url"

    def allows(self, entry: HostEntry) -> bool:
        """True when one base URL is acceptable."""
        by_class = {
            "official": self.allow_official,
            "localhost": self.allow_localhost,
            "private-network": self.allow_private_network,
        }
        return (
            self.unsafe_allow_any_host
            or by_class.get(entry.classification or "", False)
            or first_match(self.allowed_hosts, entry.host) is not None
        )

    def check(self, facts: PolicyInput) -> RuleResult:
        """Pass when every base URL is allowed."""
        sent = sent_host_entries(
            facts,
            self.fields,
            name=self.name,
            mode=self.mode,
            unsafe_pass_if_not_sent=self.unsafe_pass_if_not_sent,
            classified=True,
        )
        if isinstance(sent, RuleResult):
            return sent
        entries, skipped = sent.entries, sent.skipped
        refused = [e.describe() for e in entries if not self.allows(e)]
        if refused:
            reason = f"base URL not allowed: {listing(refused)}"
            return RuleResult(self.name, self.mode, False, reason + skipped)
        if not entries:
            reason = "no base URL set (tools use their defaults)"
        else:
            reason = f"every base URL allowed: {listing(e.describe() for e in entries)}"
        return RuleResult(self.name, self.mode, True, reason + skipped)


__all__ = ["BASEURL_FIELDS", "BaseUrlRule"]
