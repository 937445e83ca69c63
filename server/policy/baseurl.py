"""Base-URL rule: where coding tools send API traffic; a relay shows up here.

Each base URL in ``baseurl.env`` and ``baseurl.tools`` must be allowed by its classification
(``official`` by default; ``localhost`` and ``private-network`` only when switched on) or by a
host glob in ``allowed_hosts``. The classification is derived here, from the URL's provider
and host and the policy's provider hosts (``official_hosts``, defaulting to the shipped
``attest.catalog.hosts`` data); the agent's own ``classification`` is display-only and never
read. No base URL at all passes: the tools then use their own defaults.

Fail closed: a base-URL source the agent could not read or parse (``baseurl.errors``) fails
the rule, and so does ``baseurl.errors`` not being sent, unless
``unsafe_ignore_unreadable_sources``.
"""

from __future__ import annotations

from dataclasses import dataclass

from attest.catalog import FieldId
from attest.catalog.hosts import DEFAULTS, OTHER, HostClass, OfficialHosts, classify, provider_of
from server.policy.globs import Glob, first_match
from server.policy.model import PolicyInput, RuleMode, RuleResult
from server.policy.signals import HostEntry, listing, sent_host_entries, unreadable_sources

BASEURL_FIELDS = (FieldId("baseurl.env"), FieldId("baseurl.tools"))
ERRORS_FIELD = FieldId("baseurl.errors")


@dataclass(frozen=True)
class BaseUrlRule:
    """Every reported base URL must be official, an allowed kind of local, or an allowed host."""

    allowed_hosts: tuple[Glob, ...] = ()
    allow_official: bool = True
    allow_localhost: bool = False
    allow_private_network: bool = False
    unsafe_allow_any_host: bool = False
    official: OfficialHosts = DEFAULTS
    fields: tuple[FieldId, ...] = BASEURL_FIELDS
    unsafe_pass_if_not_sent: bool = False
    unsafe_ignore_unreadable_sources: bool = False
    mode: RuleMode = RuleMode.ENFORCE
    name: str = "base_url"

    def classify(self, entry: HostEntry) -> HostClass:
        """The verifier's classification of one base URL, from policy data; the provider of an
        ``env:`` source comes from the variable's name, not from the agent."""
        provider = provider_of(entry.source, entry.provider or OTHER)
        return classify(provider, entry.host, self.official)

    def allows(self, entry: HostEntry) -> bool:
        """True when one base URL is acceptable."""
        by_class: dict[HostClass, bool] = {
            "official": self.allow_official,
            "localhost": self.allow_localhost,
            "private-network": self.allow_private_network,
            "custom": False,
        }
        return (
            self.unsafe_allow_any_host
            or by_class[self.classify(entry)]
            or first_match(self.allowed_hosts, entry.host) is not None
        )

    def check(self, facts: PolicyInput) -> RuleResult:
        """Pass when every base URL is allowed and every source could be read."""
        sent = sent_host_entries(
            facts,
            self.fields,
            name=self.name,
            mode=self.mode,
            unsafe_pass_if_not_sent=self.unsafe_pass_if_not_sent,
            with_provider=True,
        )
        if isinstance(sent, RuleResult):
            return sent
        entries, skipped = sent.entries, sent.skipped
        refused = [e.describe(self.classify(e)) for e in entries if not self.allows(e)]
        unreadable = unreadable_sources(
            facts,
            ERRORS_FIELD,
            sent.fields,
            rule=self.name,
            unsafe_ignore=self.unsafe_ignore_unreadable_sources,
        )
        if refused:
            reason = f"base URL not allowed: {listing(refused)}"
            if unreadable is not None:
                reason += f"; {unreadable}"
            return RuleResult(self.name, self.mode, False, reason + skipped)
        if unreadable is not None:
            return RuleResult(self.name, self.mode, False, unreadable + skipped)
        if not entries:
            reason = "no base URL set (tools use their defaults)"
        else:
            shown = listing(e.describe(self.classify(e)) for e in entries)
            reason = f"every base URL allowed: {shown}"
        return RuleResult(self.name, self.mode, True, reason + skipped)


__all__ = ["BASEURL_FIELDS", "ERRORS_FIELD", "BaseUrlRule"]
