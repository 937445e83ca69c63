"""Webhook bodies: Slack-compatible ``{"text": ...}`` or a generic JSON document signed with
HMAC-SHA256 (``X-Envattest-Signature: sha256=<hex>`` over ``<timestamp>.<body>``)."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

from server.alerts.config import Webhook
from server.store.alerts import DueDelivery

SIGNATURE_HEADER = "X-Envattest-Signature"
TIMESTAMP_HEADER = "X-Envattest-Timestamp"


@dataclass(frozen=True)
class WebhookRequest:
    """What to POST."""

    body: bytes
    headers: dict[str, str]


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn control characters: agent-supplied hosts must not become mentions/links
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header's value; receivers recompute it and compare in constant time."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def build_request(webhook: Webhook, delivery: DueDelivery, *, now: int) -> WebhookRequest:
    """The body and headers for one delivery to ``webhook``."""
    headers = {"Content-Type": "application/json", "User-Agent": "envattest-alerts"}
    if webhook.format == "slack":
        text = f"envattest alert ({delivery.kind}): {_slack_escape(delivery.summary)}"
        return WebhookRequest(json.dumps({"text": text}).encode(), headers)
    doc = {
        "type": "envattest.alert",
        "alert_id": delivery.event_id,
        "kind": delivery.kind,
        "summary": delivery.summary,
        "device_id": delivery.device_id,
        "audit_seq": delivery.audit_seq,
        "raised_at": delivery.at,
        "attempt": delivery.attempts + 1,
    }
    body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    headers[TIMESTAMP_HEADER] = str(now)
    headers[SIGNATURE_HEADER] = sign(webhook.secret, now, body)
    return WebhookRequest(body, headers)
