"""Usage rules at forward auth: count the request, compare with ``[rules.usage]``.

``enforce`` denies with the rule's reason; ``report`` only records. Either way the first
breach of a rule by a token is written to the audit log once per process (an audit write per
request would let one busy token flood the log).
"""

from __future__ import annotations

from collections.abc import Callable

from server.errors import AccessDeniedError
from server.policy import Policy, RuleMode
from server.policy.usage import UsageRule
from server.store import AuditEvent
from server.usage.observer import UsageObserver

MAX_AUDITED = 100_000


def usage_rules(policy: Policy) -> tuple[UsageRule, ...]:
    """The policy's ``[rules.usage]`` rules."""
    return tuple(rule for rule in policy.rules if isinstance(rule, UsageRule))


class UsageEnforcer:
    """Observes one forward-auth request and applies the usage rules to its token."""

    def __init__(
        self,
        observer: UsageObserver,
        *,
        policy: Callable[[], Policy],
        audit: Callable[[AuditEvent], None],
    ) -> None:
        self.observer = observer
        self._policy = policy
        self._audit = audit
        self._audited: set[tuple[str, str]] = set()
        self._rules_of: Policy | None = None
        self._rules: tuple[UsageRule, ...] = ()

    def _current_rules(self) -> tuple[UsageRule, ...]:
        policy = self._policy()  # replaced whole on reload: compare identity
        if policy is not self._rules_of:
            self._rules, self._rules_of = usage_rules(policy), policy
        return self._rules

    def check(self, *, device_id: str, jti: str, exp: int, network: str | None) -> None:
        """Count the request; raise AccessDeniedError if an enforce rule fires."""
        observed = self.observer.observe(device_id=device_id, jti=jti, exp=exp, network=network)
        for rule in self._current_rules():
            result = rule.check_usage(observed)
            if result.passed:
                continue
            enforced = result.mode is RuleMode.ENFORCE
            if (jti, result.rule) not in self._audited:
                if len(self._audited) >= MAX_AUDITED:
                    self._audited.clear()
                self._audited.add((jti, result.rule))
                self._audit(
                    AuditEvent(
                        "usage.denied" if enforced else "usage.reported",
                        device_id,
                        "deny" if enforced else None,
                        {
                            "rule": result.rule,
                            "mode": result.mode.value,
                            "reason": result.reason,
                            "jti": jti,
                            "networks": observed.networks,
                            "requests_this_minute": observed.requests_this_minute,
                        },
                    )
                )
            if enforced:
                reason = f"{result.rule} (enforce): {result.reason}"
                raise AccessDeniedError(
                    f"access denied by policy: {reason}; get a fresh token on this device "
                    "with 'envattest token' and do not share it",
                    audit_detail=reason,
                    extra={"decision": "deny", "reasons": [reason]},
                )
