"""The shared signal readers the host and tunnel rules start from: which fields were sent,
the endpoints read from them, and the short listing used in reasons."""

from __future__ import annotations

from attest.catalog import FieldId
from server.policy.model import RuleMode, RuleResult
from server.policy.signals import (
    HostEntry,
    Presence,
    TunnelEntry,
    host_entries,
    listing,
    not_sent_result,
    presence,
    tunnel_entries,
)
from tests.server.policy.conftest import base_url, make_facts, proxy_endpoint, tunnel

ENV, OS, PAC = FieldId("proxy.env"), FieldId("proxy.os"), FieldId("proxy.pac")


def test_presence_splits_sent_consented_and_withheld() -> None:
    facts = make_facts({"proxy.os": []}, consented=frozenset({"proxy.os", "proxy.pac"}))
    assert presence(facts, (ENV, OS, PAC)) == Presence(
        sent=(OS,),
        missing=(ENV, PAC),
        reason="field proxy.env was not sent (not consented); field proxy.pac was consented "
        "but not sent",
    )
    assert presence(facts, (OS,)) == Presence(sent=(OS,), missing=(), reason="")


def test_not_sent_result() -> None:
    found = Presence(sent=(), missing=(ENV,), reason="field proxy.env was not sent")
    assert not_sent_result("proxy", RuleMode.REPORT, found, unsafe_pass_if_not_sent=False) == (
        RuleResult("proxy", RuleMode.REPORT, False, "field proxy.env was not sent")
    )
    assert not_sent_result("proxy", RuleMode.REPORT, found, unsafe_pass_if_not_sent=True) == (
        RuleResult(
            "proxy",
            RuleMode.REPORT,
            True,
            "field proxy.env was not sent; passed (unsafe_pass_if_not_sent)",
        )
    )


def test_host_entries_keep_field_source_host_and_provider() -> None:
    facts = make_facts(
        {
            "proxy.env": [proxy_endpoint("p.example.internal")],
            "proxy.os": [proxy_endpoint("q.example.internal", "os:system")],
            "baseurl.tools": [base_url("gw.example.internal", source="codex:user")],
        }
    )
    assert host_entries(facts, (ENV, OS), with_provider=False) == (
        HostEntry(ENV, "env:HTTPS_PROXY", "p.example.internal"),
        HostEntry(OS, "os:system", "q.example.internal"),
    )
    assert host_entries(facts, (FieldId("baseurl.tools"),), with_provider=True) == (
        HostEntry(FieldId("baseurl.tools"), "codex:user", "gw.example.internal", "anthropic"),
    )


def test_describe() -> None:
    entry = HostEntry(ENV, "env:HTTPS_PROXY", "p.example.internal")
    assert entry.describe() == "env:HTTPS_PROXY -> p.example.internal"
    assert entry.describe("") == "env:HTTPS_PROXY -> p.example.internal"
    assert entry.describe("custom") == "env:HTTPS_PROXY -> p.example.internal (custom)"


def test_tunnel_entries() -> None:
    facts = make_facts({"proxy.tunnels": [tunnel("wg0", "wireguard"), tunnel("t", "tun")]})
    assert tunnel_entries(facts, FieldId("proxy.tunnels")) == (
        TunnelEntry("wg0", "wireguard"),
        TunnelEntry("t", "tun"),
    )


def test_listing() -> None:
    assert listing([]) == ""
    assert listing(["a"]) == "a"
    assert listing(list("abcde")) == "a; b; c; d; e"
    assert listing(iter("abcdef")) == "a; b; c; d; e; and 1 more"
    assert listing(list("abcdefgh")) == "a; b; c; d; e; and 3 more"
