"""Prometheus metrics, one registry per process (per ``Runtime``).

Attestation outcomes are counted from committed audit records (``SqlStore.on_audit``), so a
metric never counts a decision the audit log does not hold.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from server.store import AuditRecord

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The verifier's counters and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.attestations = Counter(
            "envattest_attestations", "Attestations by decision (allow, deny, reject)",
            ["decision"], registry=r,
        )  # fmt: skip
        self.refusals = Counter(
            "envattest_attestation_refusals", "Rejected evidence by pipeline step",
            ["step"], registry=r,
        )  # fmt: skip
        self.nonce_refusals = Counter(
            "envattest_nonce_refusals", "Evidence refused for its nonce (replay, unknown, expired)",
            registry=r,
        )  # fmt: skip
        self.requests = Counter(
            "envattest_http_requests", "HTTP requests by route, method and status",
            ["route", "method", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "envattest_http_request_duration_seconds", "HTTP request latency by route",
            ["route", "method"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.token_checks = Counter(
            "envattest_token_checks", "Introspection and forward-auth checks by result",
            ["endpoint", "result"], registry=r,
        )  # fmt: skip
        self.token_refusals = Counter(
            "envattest_token_refusals", "Forward-auth and introspection refusals by check step",
            ["endpoint", "step"], registry=r,
        )  # fmt: skip
        self.rate_limited = Counter(
            "envattest_rate_limited", "Requests refused with 429, by limit", ["limit"], registry=r
        )
        self.reloads = Counter(
            "envattest_reloads", "Manifest/policy/key reloads by result", ["result"], registry=r
        )
        self._request_children: dict[tuple[str, str, int], tuple[Histogram, Counter]] = {}

    def observe_audit(self, record: AuditRecord) -> None:
        """Count attestation outcomes from a committed audit record."""
        if record.event == "attest" and record.decision:
            self.attestations.labels(record.decision).inc()
        elif record.event == "attest.rejected":
            self.attestations.labels("reject").inc()
            step = str((record.data or {}).get("step", "unknown"))
            self.refusals.labels(step).inc()
            if step == "nonce":
                self.nonce_refusals.inc()

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered HTTP request and its latency."""
        # the labelled children, looked up once per (route, method, status): labels() is most
        # of what a request costs here; routes are the application's, so the map stays small
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.latency.labels(route, method),
                self.requests.labels(route, method, str(status)),
            )
            self._request_children[key] = children
        children[0].observe(seconds)
        children[1].inc()

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
