"""Tunnel rule: VPN and tunnel interfaces (``proxy.tunnels``) by kind and name.

A tunnel fails when its kind matches ``deny_kinds`` or its name matches ``deny_names``. When
``allow_kinds`` or ``allow_names`` is given, every tunnel must also match one of them (an
allow list: "only our corporate VPN"). No tunnel at all passes.
"""

from __future__ import annotations

from dataclasses import dataclass

from attest.catalog import FieldId
from server.policy.globs import Glob, first_match
from server.policy.model import PolicyInput, RuleMode, RuleResult
from server.policy.signals import (
    MalformedSignalError,
    TunnelEntry,
    listing,
    not_sent_result,
    presence,
    tunnel_entries,
)

TUNNEL_FIELD = FieldId("proxy.tunnels")


@dataclass(frozen=True)
class TunnelRule:
    """No tunnel may match a deny list; with allow lists, every tunnel must match one."""

    deny_kinds: tuple[Glob, ...] = ()
    deny_names: tuple[Glob, ...] = ()
    allow_kinds: tuple[Glob, ...] = ()
    allow_names: tuple[Glob, ...] = ()
    unsafe_pass_if_not_sent: bool = False
    mode: RuleMode = RuleMode.ENFORCE
    name: str = "tunnels"

    def refusal(self, tunnel: TunnelEntry) -> str | None:
        """Why one tunnel is refused, or None when it is fine."""
        label = f"{tunnel.name} ({tunnel.kind})"
        kind = first_match(self.deny_kinds, tunnel.kind)
        if kind is not None:
            return f"{label} matches deny_kinds {kind.pattern!r}"
        name = first_match(self.deny_names, tunnel.name)
        if name is not None:
            return f"{label} matches deny_names {name.pattern!r}"
        if not (self.allow_kinds or self.allow_names):
            return None
        if first_match(self.allow_kinds, tunnel.kind) or first_match(self.allow_names, tunnel.name):
            return None
        return f"{label} matches neither allow_kinds nor allow_names"

    def check(self, facts: PolicyInput) -> RuleResult:
        """Pass when no tunnel is refused."""
        found = presence(facts, (TUNNEL_FIELD,))
        if found.missing:
            return not_sent_result(
                self.name, self.mode, found, unsafe_pass_if_not_sent=self.unsafe_pass_if_not_sent
            )
        try:
            tunnels = tunnel_entries(facts, TUNNEL_FIELD)
        except MalformedSignalError as exc:
            return RuleResult(self.name, self.mode, False, str(exc))
        refused = [r for r in (self.refusal(t) for t in tunnels) if r is not None]
        if refused:
            return RuleResult(self.name, self.mode, False, f"tunnel refused: {listing(refused)}")
        if not tunnels:
            return RuleResult(self.name, self.mode, True, "no tunnel interface")
        names = listing(f"{t.name} ({t.kind})" for t in tunnels)
        return RuleResult(self.name, self.mode, True, f"every tunnel allowed: {names}")


__all__ = ["TUNNEL_FIELD", "TunnelRule"]
