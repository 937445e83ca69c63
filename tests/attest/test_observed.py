"""Verifier-observed fields: declared in the manifest like agent fields, never sendable."""

from __future__ import annotations

import json

import pytest

from agent.consent import render_prompt
from agent.selfservice import summarize_usage
from attest.catalog import CATALOG
from attest.catalog.docs import render_markdown, render_text
from attest.catalog.observed import OBSERVED
from attest.errors import FormatError
from attest.evidence import ConsentClaim, new_claims
from attest.manifest import parse_manifest, render_manifest

FIELD = [{"id": "timezone.iana", "purpose": "p", "retention_days": 1, "mode": "report"}]
OBSERVED_ENTRIES = [
    {"id": "usage.requests", "purpose": "rate", "retention_days": 7},
    {"id": "usage.client_networks", "purpose": "relays", "retention_days": 14},
]


def test_observed_fields_are_not_catalog_fields_the_agent_could_send() -> None:
    assert not set(OBSERVED) & set(CATALOG)
    consent = ConsentClaim("a" * 64, 0, ())
    for field_id in OBSERVED:
        with pytest.raises(FormatError, match="not a catalog field"):
            new_claims(nonce="n", device_id="d", consent=consent, signals={field_id: 1}, now=0)


def test_a_manifest_declares_observed_fields_with_purpose_and_retention() -> None:
    manifest = parse_manifest(render_manifest("v", FIELD, OBSERVED_ENTRIES))
    assert [(o.field.id, o.purpose, o.retention_days) for o in manifest.observed] == [
        ("usage.requests", "rate", 7),
        ("usage.client_networks", "relays", 14),
    ]
    assert manifest.field_ids == {"timezone.iana"}  # consent still covers agent fields only
    assert parse_manifest(render_manifest("v", FIELD)).observed == ()


@pytest.mark.parametrize(
    ("observed", "message"),
    [
        ([{"id": "usage.keystrokes", "purpose": "p", "retention_days": 1}], "not a verifier-obs"),
        ([{"id": "timezone.iana", "purpose": "p", "retention_days": 1}], "not a verifier-obs"),
        ([{"id": "usage.requests", "purpose": " ", "retention_days": 1}], "needs a non-empty"),
        ([{"id": "usage.requests", "purpose": "p", "retention_days": -1}], "retention_days"),
        ([{"id": "usage.requests", "purpose": "p", "retention_days": True}], "retention_days"),
        (OBSERVED_ENTRIES[:1] * 2, "twice"),
        ("usage.requests", "must be a list"),
        (["usage.requests"], "must be an object"),
    ],
)
def test_bad_observed_declarations_are_refused(observed: object, message: str) -> None:
    raw = json.dumps(
        {"manifest_version": 1, "verifier": "v", "fields": FIELD, "observed": observed}
    )
    with pytest.raises(FormatError, match=message):
        parse_manifest(raw.encode())


def test_consent_shows_what_the_verifier_observes() -> None:
    manifest = parse_manifest(render_manifest("v", FIELD, OBSERVED_ENTRIES))
    text = "\n".join(render_prompt(manifest, {}, server="https://v"))
    assert "usage.client_networks (observed by the verifier, kept 14 days)" in text
    assert "nothing collected here" in text
    assert "why:  relays" in text
    plain = "\n".join(render_prompt(parse_manifest(render_manifest("v", FIELD)), {}, server="s"))
    assert "observed by the verifier" not in plain


def test_field_docs_list_observed_fields() -> None:
    for field_id in OBSERVED:
        assert f"`{field_id}`" in render_markdown()
        assert field_id in render_text()


def test_whoami_summary_shows_observed_usage() -> None:
    lines = summarize_usage(
        [
            {
                "token_jti": "abcdefghijklmnop",
                "requests": 4,
                "peak_requests_per_minute": 3,
                "client_networks": [{"network": "198.51.100.0/24"}, {"network": "2001:db8::/56"}],
            }
        ]
    )
    assert lines[0] == "observed by the verifier at its gateway: 1 token(s)"
    assert "4 requests (peak 3/min)" in lines[1]
    assert "198.51.100.0/24, 2001:db8::/56" in lines[1]
    assert summarize_usage([]) == []
