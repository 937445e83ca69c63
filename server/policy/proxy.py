"""Proxy rule: proxies must be the organisation's own, and may be required.

Every endpoint in the checked fields (``proxy.env``, ``proxy.os``, ``proxy.pac``,
``proxy.tools`` by default) must match ``allowed_hosts``; an empty ``allowed_hosts`` means no
proxy at all is acceptable. ``require_proxy`` adds "traffic must go through our proxy": at
least one endpoint must be configured. Narrow ``fields`` (for example to ``proxy.env``) to
require the proxy where the coding tool actually reads it. For ``proxy.pac`` the host is the
server of the PAC file, so list that host too when PAC is in use.

Fail closed: a proxy source the agent could not read or parse (``proxy.errors``) for one of
the checked fields fails the rule, and so does ``proxy.errors`` not being sent, unless
``unsafe_ignore_unreadable_sources``.
"""

from __future__ import annotations

from dataclasses import dataclass

from attest.catalog import FieldId
from server.policy.globs import Glob, first_match, show
from server.policy.model import PolicyInput, RuleMode, RuleResult
from server.policy.signals import listing, sent_host_entries, unreadable_sources

PROXY_FIELDS = (
    FieldId("proxy.env"),
    FieldId("proxy.os"),
    FieldId("proxy.pac"),
    FieldId("proxy.tools"),
)
ERRORS_FIELD = FieldId("proxy.errors")


@dataclass(frozen=True)
class ProxyRule:
    """Configured proxies must match ``allowed_hosts``; with ``require_proxy`` one must exist."""

    allowed_hosts: tuple[Glob, ...] = ()
    require_proxy: bool = False
    unsafe_allow_any_host: bool = False
    fields: tuple[FieldId, ...] = PROXY_FIELDS
    unsafe_pass_if_not_sent: bool = False
    unsafe_ignore_unreadable_sources: bool = False
    mode: RuleMode = RuleMode.ENFORCE
    name: str = "proxy"

    def check(self, facts: PolicyInput) -> RuleResult:
        """Pass when every proxy is allowed and, if required, at least one is set."""
        sent = sent_host_entries(
            facts,
            self.fields,
            name=self.name,
            mode=self.mode,
            unsafe_pass_if_not_sent=self.unsafe_pass_if_not_sent,
        )
        if isinstance(sent, RuleResult):
            return sent
        entries, skipped = sent.entries, sent.skipped
        refused = [
            e.describe()
            for e in entries
            if not self.unsafe_allow_any_host and first_match(self.allowed_hosts, e.host) is None
        ]
        unreadable = unreadable_sources(
            facts,
            ERRORS_FIELD,
            sent.fields,
            rule=self.name,
            unsafe_ignore=self.unsafe_ignore_unreadable_sources,
        )
        if refused:
            reason = f"proxy not allowed: {listing(refused)} (allowed: {show(self.allowed_hosts)})"
            if unreadable is not None:
                reason += f"; {unreadable}"
            return RuleResult(self.name, self.mode, False, reason + skipped)
        if unreadable is not None:
            return RuleResult(self.name, self.mode, False, unreadable + skipped)
        if not entries:
            if self.require_proxy:
                reason = (
                    f"no proxy configured in {', '.join(sent.fields)}; "
                    f"policy requires one of: {show(self.allowed_hosts)}"
                )
                return RuleResult(self.name, self.mode, False, reason + skipped)
            return RuleResult(self.name, self.mode, True, "no proxy configured" + skipped)
        reason = f"every proxy allowed: {listing(e.describe() for e in entries)}"
        return RuleResult(self.name, self.mode, True, reason + skipped)


__all__ = ["ERRORS_FIELD", "PROXY_FIELDS", "ProxyRule"]
