"""URL reduction: what survives (scheme, host, port, has_credentials) and what never does."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from agent.collectors import CollectionContext, providers
from agent.collectors.urlreaders import BOTH, Reader, canonical_host
from agent.collectors.urls import base_urls, destinations, proxy_endpoints
from attest.catalog.hosts import classify


@pytest.mark.parametrize(
    ("raw", "scheme", "host", "port", "creds"),
    [
        ("http://user:pass@proxy.example:3128", "http", "proxy.example", 3128, True),
        ("http://user@proxy.example", "http", "proxy.example", None, True),
        ("http://@proxy.example", "http", "proxy.example", None, False),
        ("proxy.example:3128", "http", "proxy.example", 3128, False),
        ("carol:pw@proxy.example:8080", "http", "proxy.example", 8080, True),
        ("socks5h://[2001:DB8::10]:1080", "socks5h", "2001:db8::10", 1080, False),
        ("http://[fe80::1%25eth0]:3128", "http", "fe80::1", 3128, False),
        ("[::1]:8080", "http", "::1", 8080, False),
        ("HTTP://PROXY.Example.:80/", "http", "proxy.example", None, False),  # default port
        ("HTTP://PROXY.Example.:8080/", "http", "proxy.example", 8080, False),
        ("  http://proxy.example:3128/path?x=1#f \n", "http", "proxy.example", 3128, False),
        ("http://bücher.example:8080", "http", "xn--bcher-kva.example", 8080, False),
        ("http://127.1:3128", "http", "127.0.0.1", 3128, False),
        ("http://0x7f000001", "http", "127.0.0.1", None, False),
        ("http://2130706433", "http", "127.0.0.1", None, False),
        ("http://pro%78y.example", "http", "proxy.example", None, False),  # WHATWG decodes
        ("socks5h://user:pw@proxy.example:1080", "socks5h", "proxy.example", 1080, True),
        ("socks5://proxy.example", "socks5", "proxy.example", None, False),
        ("socks4://10.0.0.1:1080", "socks4", "10.0.0.1", 1080, False),
        ("socks4a://0x7f.1:1080", "socks4a", "127.0.0.1", 1080, False),
        ("SOCKS5H://[::1]:1080", "socks5h", "::1", 1080, False),
        ("socks5h://Bücher.example:1080", "socks5h", "xn--bcher-kva.example", 1080, False),
    ],
)
def test_proxy_values_reduce_to_scheme_host_port(
    raw: str, scheme: str, host: str, port: int | None, creds: bool
) -> None:
    assert proxy_endpoints("env:HTTPS_PROXY", raw) == [
        {
            "source": "env:HTTPS_PROXY",
            "scheme": scheme,
            "host": host,
            "port": port,
            "has_credentials": creds,
        }
    ]


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "proxy",  # a bare word: could be a pasted token, never guessed as a host
        "sk-proj-abcdef/with/path",
        "proxy.example/path",
        "http://proxy.example:99999",
        "http://proxy.example:0",
        "http://proxy.example:port",
        "http://[not-an-ip]:3128",
        "socks5h://",
        "socks5h://:1080",
        "http://exa mple.com",
        "http://" + "a" * 64 + ".example",
        "http://" + ".".join(["abcdefgh"] * 40),
        "1http://proxy.example",
        "file:///etc/passwd",
    ],
)
def test_unusable_proxy_values_are_rejected(raw: str) -> None:
    assert destinations(raw, default_scheme="http") == ()


def test_secrets_paths_and_queries_never_survive() -> None:
    secret_parts = ["alice", "hunter2", "sk-SECRET", "api_key", "v1", "frag", "relay-path"]
    raw = "https://alice:hunter2@relay.example.net:8443/relay-path/v1?api_key=sk-SECRET#frag"
    reduced = base_urls("env:ANTHROPIC_BASE_URL", "anthropic", raw)
    assert reduced == [
        {
            "source": "env:ANTHROPIC_BASE_URL",
            "provider": "anthropic",
            "scheme": "https",
            "host": "relay.example.net",
            "port": 8443,
            "classification": "custom",
        }
    ]
    text = json.dumps(reduced)
    assert not [part for part in secret_parts if part in text]


def test_base_urls_need_a_scheme() -> None:
    assert base_urls("env:OPENAI_BASE_URL", "openai", "api.openai.com/v1") == []
    assert base_urls("env:OPENAI_BASE_URL", "openai", "sk-proj-0123456789") == []


@pytest.mark.parametrize(
    ("raw", "readers", "hosts"),
    [
        # WHATWG: a backslash ends the authority, so Node clients connect to evil.example;
        # httpx takes it as userinfo and connects to the official host. Both are reported.
        (
            "https://evil.example\\@api.anthropic.com/v1",
            BOTH,
            ["evil.example", "api.anthropic.com"],
        ),
        ("https://evil.example\\@api.anthropic.com/v1", (Reader.WHATWG,), ["evil.example"]),
        ("https://evil.example\\@api.anthropic.com/v1", (Reader.PYTHON,), ["api.anthropic.com"]),
        # Tab and newline are removed by WHATWG; httpx refuses the URL (no connection).
        ("https://api.anthr\topic.com", BOTH, ["api.anthropic.com"]),
        ("https://api.anthr\topic.com", (Reader.PYTHON,), []),
        ("https://user@evil.example@api.anthropic.com", BOTH, ["api.anthropic.com"]),
        # Percent-encoding in a host: WHATWG decodes, httpx keeps it (unresolvable).
        ("https://%61pi.anthropic.com", BOTH, ["api.anthropic.com"]),
        # Ideographic full stop is a dot under IDNA mapping.
        ("https://relay\u3002example", BOTH, ["relay.example"]),
    ],
)
def test_hosts_are_read_the_way_clients_read_them(
    raw: str, readers: tuple[Reader, ...], hosts: list[str]
) -> None:
    assert [d.host for d in destinations(raw, readers)] == hosts


@pytest.mark.parametrize(
    ("provider", "host", "expected"),
    [
        ("anthropic", "api.anthropic.com", "official"),
        ("openai", "api.openai.com", "official"),
        ("openai", "api.anthropic.com", "custom"),  # another provider's host is not this one's
        ("anthropic", "api.anthropic.com.evil.example", "custom"),
        ("anthropic", "evilapi.anthropic.com", "custom"),
        ("azure-openai", "contoso.openai.azure.com", "official"),
        ("azure-openai", "openai.azure.com", "custom"),
        ("azure-openai", "a.b.openai.azure.com", "custom"),
        ("aws-bedrock", "bedrock-runtime.eu-central-1.amazonaws.com", "official"),
        ("aws-bedrock", "bedrock-runtime.evil.com.amazonaws.com.evil.example", "custom"),
        ("google-vertex", "us-east5-aiplatform.googleapis.com", "official"),
        ("google-vertex", "aiplatform.googleapis.com", "official"),
        ("google-gemini", "generativelanguage.googleapis.com", "official"),
        ("other", "api.openai.com", "custom"),
        ("anthropic", "localhost", "localhost"),
        ("anthropic", "relay.localhost", "localhost"),
        ("anthropic", "127.0.0.53", "localhost"),
        ("anthropic", "::1", "localhost"),
        ("anthropic", "0.0.0.0", "localhost"),  # noqa: S104 - a value, not a bind
        ("anthropic", "::ffff:127.0.0.1", "localhost"),
        ("anthropic", "10.1.2.3", "private-network"),
        ("anthropic", "172.31.255.255", "private-network"),
        ("anthropic", "172.32.0.1", "custom"),
        ("anthropic", "192.168.0.10", "private-network"),
        ("anthropic", "100.101.102.103", "private-network"),
        ("anthropic", "169.254.169.254", "private-network"),
        ("anthropic", "fd12:3456::1", "private-network"),
        ("anthropic", "fe80::1", "private-network"),
        ("anthropic", "::ffff:10.0.0.1", "private-network"),
        ("anthropic", "8.8.8.8", "custom"),
        ("anthropic", "2001:4860::8888", "custom"),
        # Names are what DNS or a hosts file say: only IP literals are called private.
        ("anthropic", "relay.internal", "custom"),
        ("anthropic", "relay.local", "custom"),
        ("anthropic", "relay", "custom"),
    ],
)
def test_classification(provider: str, host: str, expected: str) -> None:
    normalized = canonical_host(host)
    assert normalized is not None
    assert classify(provider, normalized) == expected


def test_every_base_url_variable_names_a_known_provider() -> None:
    assert set(providers.BASE_URL_ENV.values()) <= providers.PROVIDERS


def test_tool_provider_ids_are_mapped_never_passed_through() -> None:
    assert providers.provider_for_tool_id("Azure") == "azure-openai"
    assert providers.provider_for_tool_id("amazon-bedrock") == "aws-bedrock"
    assert providers.provider_for_tool_id("my-secret-team-relay") == providers.OTHER
    assert providers.provider_for_tool_id(42) == providers.OTHER


@pytest.mark.parametrize(
    "value",
    [
        "socks5h://user:secret@proxy.example:1080",
        "socks5h://proxy.example",
        "socks4://[::1]:1080",
        "socks5://0x7f.1:1080",
        "socks5h://",
        "socks5h://proxy.example:99999",
    ],
)
def test_all_proxy_socks_is_reported_never_a_crash(
    empty_context: CollectionContext, value: str
) -> None:
    from agent.collectors import collect_signals

    ctx = replace(empty_context, env={"ALL_PROXY": value})
    got = collect_signals(ctx, ["proxy.env", "proxy.errors"])
    entries, errors = got["proxy.env"], got["proxy.errors"]
    assert isinstance(entries, list)
    assert isinstance(errors, list)
    assert len(entries) + len(errors) >= 1
    assert all(e["scheme"].startswith("socks") for e in entries)
    assert errors in (
        [],
        [{"field": "proxy.env", "source": "env:ALL_PROXY", "error": "invalid-url"}],
    )
    assert "secret" not in json.dumps(got)
