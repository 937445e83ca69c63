"""Who the client is: the TCP peer, unless the peer is a configured proxy; then the rightmost
X-Forwarded-For hop that is not a trusted proxy. Unit cases, configuration, and a real server
(uvicorn's own proxy-header handling is off, so loopback is not trusted by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from server.config import load_config
from server.errors import ConfigError
from server.limits import ClientAddresses, parse_trusted_proxies
from tests.servers import init_verifier


def _scope(peer: str, *forwarded: str) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return {"type": "http", "client": (peer, 1234), "headers": headers}


def _resolver(*cidrs: str) -> ClientAddresses:
    return ClientAddresses(parse_trusted_proxies(cidrs))


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "client"),
    [
        # no proxy configured: the header is ignored whoever sends it
        ((), "127.0.0.1", ("203.0.113.5",), "127.0.0.1"),
        # an untrusted peer cannot choose its address
        (("10.0.0.0/8",), "192.0.2.1", ("203.0.113.5",), "192.0.2.1"),
        # a trusted proxy: the address it appended
        (("127.0.0.1/32",), "127.0.0.1", ("203.0.113.5",), "203.0.113.5"),
        # what the client wrote left of it is not believed
        (("127.0.0.1/32",), "127.0.0.1", ("6.6.6.6, 203.0.113.5",), "203.0.113.5"),
        (("127.0.0.1/32",), "127.0.0.1", ("6.6.6.6", "203.0.113.5"), "203.0.113.5"),
        # a chain of trusted proxies is skipped from the right
        (("10.0.0.0/8",), "10.0.0.1", ("203.0.113.5, 10.1.1.1, 10.2.2.2",), "203.0.113.5"),
        # every hop trusted: the leftmost one
        (("10.0.0.0/8",), "10.0.0.1", ("10.9.9.9, 10.1.1.1",), "10.9.9.9"),
        # a trusted proxy that wrote garbage: counted as the proxy itself
        (("10.0.0.0/8",), "10.0.0.1", ("203.0.113.5, not-an-ip",), "10.0.0.1"),
        # no header from a trusted proxy: the proxy
        (("10.0.0.0/8",), "10.0.0.1", (), "10.0.0.1"),
        # IPv6
        (("::1/128",), "::1", ("2001:db8::7",), "2001:db8::7"),
        (("::1/128",), "::1", ("[2001:db8::7]",), "::1"),
    ],
)
def test_the_client_address(
    trusted: tuple[str, ...], peer: str, forwarded: tuple[str, ...], client: str
) -> None:
    assert _resolver(*trusted).resolve(_scope(peer, *forwarded)) == client


def test_a_bad_proxy_entry_is_a_config_error_that_says_what_to_write() -> None:
    with pytest.raises(ConfigError, match=r"trusted_proxies: '10\.0\.0\.0/33' .* CIDRs such as"):
        parse_trusted_proxies(["10.0.0.0/33"])


def test_trusted_proxies_and_body_timeout_are_read_from_server_toml(tmp_path: Path) -> None:
    (tmp_path / "server.toml").write_text(
        'trusted_proxies = ["10.0.0.0/8", "::1"]\nbody_timeout_s = 3\n'
    )
    config = load_config(tmp_path)
    assert config.trusted_proxies == ("10.0.0.0/8", "::1")
    assert config.body_timeout_s == 3
    (tmp_path / "server.toml").write_text("trusted_proxies = [1]\n")
    with pytest.raises(ConfigError, match="trusted_proxies must be"):
        load_config(tmp_path)


@pytest.mark.parametrize("trust_loopback", [False, True])
def test_a_real_server_believes_x_forwarded_for_only_from_a_trusted_proxy(
    tmp_path: Path, trust_loopback: bool
) -> None:
    server = init_verifier(tmp_path / "v")
    with (server.data_dir / "server.toml").open("a") as toml:
        toml.write("rate_limit_per_minute = 5\n")
        if trust_loopback:
            toml.write('trusted_proxies = ["127.0.0.1/32"]\n')
    server.start()
    try:
        with httpx.Client(base_url=server.url) as http:

            def status(forwarded: str) -> int:
                return http.get("/v1/manifest", headers={"X-Forwarded-For": forwarded}).status_code

            # six clients behind the proxy, one request each
            statuses = [status(f"203.0.113.{n}") for n in range(6)]
            if trust_loopback:
                assert statuses == [200] * 6
                # one of them, over its own limit
                assert [status("203.0.113.0") for _ in range(5)][-1] == 429
                assert status("203.0.113.99") == 200
            else:
                # the header is ignored: all six count against the loopback peer
                assert statuses == [200] * 5 + [429]
    finally:
        server.stop()
