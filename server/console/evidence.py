"""What an attestation's audit record says, reduced for the console: values per catalog
field, base URLs per source, the deny reason, and the differences between two records.

Everything here reads the audit data exactly as the verifier stored it; nothing is trusted
beyond being shown (the templates escape every value). A base URL's classification is the
verifier's, derived from its provider and host as the policy does (``attest.catalog.hosts``),
never the agent's display-only one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from attest.catalog.hosts import classify, provider_of

MAX_VALUE_CHARS = 255

# list items: which key names the value, which one qualifies it
_ITEM_VALUE_KEYS = ("host", "kind", "error")
_ITEM_DETAIL_KEYS = ("scheme",)
BASEURL_FIELDS = ("baseurl.env", "baseurl.tools")


def derived_class(item: Mapping[str, Any]) -> str:
    """The verifier's classification of one reported base URL."""
    return _classified(
        str(item.get("source", "")), str(item.get("provider", "")), str(item.get("host", ""))
    )


@lru_cache(maxsize=4096)
def _classified(source: str, provider: str, host: str) -> str:
    # pure in its arguments, and the same few hosts come back in every attestation: the
    # audit follower classifies each record's base URLs twice (values and alerts)
    return str(classify(provider_of(source, provider), host.lower()))


def _text(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text[:MAX_VALUE_CHARS]


def field_values(signals: Mapping[str, Any]) -> set[tuple[str, str, str]]:
    """``(field, value, detail)`` for every signal: scalars as text, list items by their host,
    tunnel kind or error code, qualified by classification (base URLs) or scheme (proxies)."""
    out: set[tuple[str, str, str]] = set()
    for field_id, value in signals.items():
        if isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    key = next((k for k in _ITEM_VALUE_KEYS if k in item), None)
                    detail = next((item[k] for k in _ITEM_DETAIL_KEYS if k in item), "")
                    if field_id in BASEURL_FIELDS and "host" in item:
                        detail = derived_class(item)
                    shown = item.get(key) if key else item
                    out.add((field_id, _text(shown), _text(detail)[:64]))
                else:
                    out.add((field_id, _text(item), ""))
        else:
            out.add((field_id, _text(value), ""))
    return out


@dataclass(frozen=True)
class BaseUrlSeen:
    """One base URL as a source reported it."""

    classification: str
    host: str


def base_urls(signals: Mapping[str, Any]) -> dict[str, BaseUrlSeen]:
    """Base URLs keyed by their source (``env:ANTHROPIC_BASE_URL``, ``claude-code:user``)."""
    out: dict[str, BaseUrlSeen] = {}
    for field_id in BASEURL_FIELDS:
        for item in signals.get(field_id) or []:
            if isinstance(item, dict) and "source" in item and "host" in item:
                out[str(item["source"])] = BaseUrlSeen(derived_class(item), str(item["host"]))
    return out


def timezone(signals: Mapping[str, Any]) -> str | None:
    """The IANA zone reported, if any."""
    value = signals.get("timezone.iana")
    return value[:128] if isinstance(value, str) else None


def deny_reasons(data: Mapping[str, Any] | None) -> list[str]:
    """The enforce rules that failed in an attestation record (its deny reasons)."""
    results = (data or {}).get("results") or []
    return [
        str(r.get("rule"))[:128]
        for r in results
        if isinstance(r, dict) and not r.get("passed") and r.get("mode") == "enforce"
    ]


def encode_base_urls(urls: Mapping[str, BaseUrlSeen]) -> str:
    """Stored form of ``base_urls`` in the projection."""
    return json.dumps({k: [v.classification, v.host] for k, v in urls.items()}, sort_keys=True)


def decode_base_urls(text: str) -> dict[str, BaseUrlSeen]:
    """Inverse of ``encode_base_urls``."""
    return {k: BaseUrlSeen(v[0], v[1]) for k, v in json.loads(text or "{}").items()}


def base_url_changes(
    before: Mapping[str, BaseUrlSeen], after: Mapping[str, BaseUrlSeen]
) -> list[str]:
    """Sentences for every source whose classification changed, appeared or went away."""
    out = []
    for source in sorted(set(before) | set(after)):
        old, new = before.get(source), after.get(source)
        if old is None and new is not None:
            out.append(f"base URL for {source} appeared: {new.classification} {new.host}")
        elif new is None and old is not None:
            out.append(f"base URL for {source} removed (was {old.classification} {old.host})")
        elif old is not None and new is not None and old.classification != new.classification:
            out.append(
                f"base URL for {source} changed from {old.classification} {old.host} "
                f"to {new.classification} {new.host}"
            )
    return out


def evidence_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Every difference between two consecutive attestations' signals, as sentences."""
    out = []
    old_tz, new_tz = timezone(before), timezone(after)
    if old_tz != new_tz:
        out.append(f"time zone changed from {old_tz or 'none'} to {new_tz or 'none'}")
    out.extend(base_url_changes(base_urls(before), base_urls(after)))
    handled = {"timezone.iana", "baseurl.env", "baseurl.tools"}
    for field_id in sorted((set(before) | set(after)) - handled):
        if before.get(field_id) != after.get(field_id):
            old = {v for f, v, _ in field_values({field_id: before.get(field_id)}) if v != "null"}
            new = {v for f, v, _ in field_values({field_id: after.get(field_id)}) if v != "null"}
            added, removed = sorted(new - old), sorted(old - new)
            parts = ([f"added {', '.join(added)}"] if added else []) + (
                [f"removed {', '.join(removed)}"] if removed else []
            )
            out.append(f"{field_id}: {'; '.join(parts) or 'changed'}")
    return out
