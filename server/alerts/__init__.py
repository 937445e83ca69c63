"""Alerts: what the audit log shows that a security team wants to hear about at once, sent to
webhooks (Slack-compatible or HMAC-signed JSON) with retries off the request path."""
