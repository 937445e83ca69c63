"""Factories for policy tests: facts with chosen signals, and the vector directories."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from attest.catalog import FieldId
from attest.keys import KeyClass
from server.policy import PolicyInput

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "policy"
EXAMPLES = Path(__file__).resolve().parents[3] / "server" / "examples"

MakeFacts = Callable[..., PolicyInput]


def make_facts(
    signals: Mapping[str, object] | None = None,
    *,
    key_class: KeyClass = KeyClass.TPM2,
    clock_skew_s: int = 0,
    consented: frozenset[str] | None = None,
    required: frozenset[str] = frozenset(),
) -> PolicyInput:
    """Facts for one attestation; consent defaults to exactly the fields sent."""
    sent = {FieldId(k): v for k, v in (signals or {}).items()}
    return PolicyInput(
        device_id="dev-1",
        key_class=key_class,
        clock_skew_s=clock_skew_s,
        signals=sent,
        consented=frozenset(FieldId(f) for f in consented)
        if consented is not None
        else frozenset(sent),
        required=frozenset(FieldId(f) for f in required),
    )


@pytest.fixture
def facts() -> MakeFacts:
    """The ``make_facts`` factory."""
    return make_facts


def proxy_endpoint(host: str, source: str = "env:HTTPS_PROXY") -> dict[str, object]:
    """A ``proxy.*`` list entry."""
    return {
        "source": source,
        "scheme": "http",
        "host": host,
        "port": 3128,
        "has_credentials": False,
    }


def base_url(
    host: str, classification: str = "custom", source: str = "env:ANTHROPIC_BASE_URL"
) -> dict[str, object]:
    """A ``baseurl.*`` list entry."""
    return {
        "source": source,
        "provider": "anthropic",
        "scheme": "https",
        "host": host,
        "port": None,
        "classification": classification,
    }


def tunnel(name: str, kind: str) -> dict[str, object]:
    """A ``proxy.tunnels`` list entry."""
    return {"name": name, "kind": kind}
