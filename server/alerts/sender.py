"""Delivers pending alerts: one POST per attempt, back-off between attempts, failures kept
in the database (console) and counted (metrics). Runs off the request path."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import httpx

from server.alerts.config import AlertSettings
from server.alerts.webhook import build_request
from server.metrics import Metrics
from server.store.alerts import AlertStore, DueDelivery

log = logging.getLogger("envattest.alerts")
LEASE_S = 60
TIMEOUT_S = 5.0


class AlertSender:
    """Claims due deliveries and posts them."""

    def __init__(
        self,
        store: AlertStore,
        settings: AlertSettings,
        *,
        client: httpx.Client,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self.client = client
        self.metrics = metrics
        self._clock = clock
        self._hooks = {w.name: w for w in settings.webhooks}

    def _post(self, delivery: DueDelivery, now: int) -> str | None:
        """None on success, else what went wrong."""
        webhook = self._hooks.get(delivery.target)
        if webhook is None:
            return f"webhook {delivery.target!r} is no longer configured in server.toml"
        request = build_request(webhook, delivery, now=now)
        try:
            answer = self.client.post(
                webhook.url, content=request.body, headers=request.headers, timeout=TIMEOUT_S
            )
        except httpx.HTTPError as exc:
            return f"{exc.__class__.__name__}: {exc}"
        if not answer.is_success:
            return f"HTTP {answer.status_code}"
        return None

    def run_once(self) -> int:
        """Attempt every due delivery once; returns how many were attempted."""
        now = int(self._clock())
        due = self.store.claim_due(now=now, lease_s=LEASE_S)
        for delivery in due:
            error = self._post(delivery, now)
            attempts = delivery.attempts + 1
            retry_at = None
            if error is not None and attempts < self.settings.max_attempts:
                retry_at = now + self.settings.backoff_s(attempts)
            state = self.store.settle(
                delivery, ok=error is None, now=int(self._clock()), error=error, retry_at=retry_at
            )
            if self.metrics is not None:
                result = (
                    "delivered" if error is None else ("retry" if state == "pending" else "failed")
                )
                self.metrics.alert_deliveries.labels(delivery.target, result).inc()
            if error is not None:
                log.warning(
                    "alert %d to %s: attempt %d failed (%s)%s",
                    delivery.event_id,
                    delivery.target,
                    attempts,
                    error,
                    "; giving up" if state == "failed" else "; will retry",
                    extra={
                        "fields": {
                            "alert_id": delivery.event_id,
                            "target": delivery.target,
                            "attempt": attempts,
                            "state": state,
                        }
                    },
                )
        return len(due)
