"""Proxy family: environment, tool settings, tunnels, and the family's field contract."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from agent.collectors import CollectionContext
from agent.collectors.proxy import collect, no_proxy_patterns
from agent.collectors.toolproxies import find_tool_proxies, git_config_files, pip_config_files
from agent.collectors.tunnels import tunnel_kind
from attest.catalog import CATALOG, Family, FieldId
from attest.catalog.values import ProxyEndpoint

from .conftest import Recording
from .support import write

ALL = frozenset(f.id for f in CATALOG.values() if f.family is Family.PROXY)


def _ep(
    source: str, host: str, port: int | None, scheme: str = "http", creds: bool = False
) -> ProxyEndpoint:
    return {
        "source": source,
        "scheme": scheme,
        "host": host,
        "port": port,
        "has_credentials": creds,
    }


def test_env_both_cases_and_no_proxy(recording: Recording, forbidden_run: object) -> None:
    ctx, _ = recording("linux", run=forbidden_run)
    wanted = frozenset({FieldId("proxy.env"), FieldId("proxy.no_proxy")})
    assert collect(ctx, wanted) == {
        "proxy.env": [
            _ep("env:HTTP_PROXY", "proxy.corp.example", 3128, creds=True),
            _ep("env:https_proxy", "proxy.corp.example", 3129),
            _ep("env:ALL_PROXY", "2001:db8::10", 1080, scheme="socks5h"),
        ],
        "proxy.no_proxy": [
            "localhost",
            "127.0.0.1",
            ".corp.example",
            "*.internal.example",
            "10.0.0.0/8",
            "[::1]",
        ],
    }


def test_no_proxy_drops_what_is_not_a_host_pattern(empty_context: CollectionContext) -> None:
    ctx = replace(empty_context, env={"NO_PROXY": "ok.example, $(rm -rf),a b,'x'," + "y" * 300})
    assert no_proxy_patterns(ctx) == ["ok.example", "a", "b"]


def test_linux_tool_proxies(recording: Recording) -> None:
    ctx, _ = recording("linux")
    found = find_tool_proxies(ctx)
    assert list(found.found) == [
        _ep("git:system:http.proxy", "sysproxy.corp.example", 8080),
        _ep("git:xdg:http.proxy", "10.1.2.3", 8080),
        _ep("git:global:http.proxy", "proxy.corp.example", 3128, creds=True),
        _ep("git:global:http.<url>.proxy", "127.0.0.1", 1080, scheme="socks5h"),
        _ep("git:global:https.proxy", "proxy.corp.example", 3129),
        _ep("env:npm_config_https_proxy", "npm-env-proxy.corp.example", 3128),
        _ep("npm:user:proxy", "proxy.corp.example", 3128),
        _ep("npm:user:https-proxy", "proxy.corp.example", 3443, creds=True),  # ${CORP_PROXY}
        _ep("npm:project:https-proxy", "fd00::2", 8443),
        _ep("env:PIP_PROXY", "127.0.0.1", 9050, scheme="socks5"),
        _ep("pip:user-legacy:proxy", "legacy-proxy.corp.example", 8080, creds=True),
        _ep("pip:user:proxy", "proxy.corp.example", 3128),
        _ep("claude-code:user:HTTPS_PROXY", "proxy.corp.example", 3128),
    ]
    assert found.errors == ()
    text = json.dumps(list(found.found))
    for secret in (
        "alice",
        "hunter2",
        "bob",
        "carol",
        "npm_SECRETTOKEN123",
        "pypi-TOKEN",
        "git.internal",
    ):
        assert secret not in text


def test_macos_and_windows_tool_proxies(recording: Recording) -> None:
    mac, _ = recording("macos")
    assert list(find_tool_proxies(mac).found) == [
        _ep("pip:user:proxy", "mac-proxy.corp.example", None, scheme="https")
    ]
    win, _ = recording("windows")
    assert list(find_tool_proxies(win).found) == [
        _ep("git:global:http.proxy", "git-win-proxy.corp.example", 8080),
        _ep("pip:user:proxy", "win-proxy.corp.example", 3128),  # UTF-16 pip.ini
    ]


def test_config_file_locations_per_platform(recording: Recording) -> None:
    win, _ = recording("windows")
    names = [(s, p.relative_to(p.parents[2]).as_posix()) for s, p in pip_config_files(win)]
    assert names == [
        ("pip:system", "ProgramData/pip/pip.ini"),
        ("pip:user-legacy", "home/pip/pip.ini"),
        ("pip:user", "Roaming/pip/pip.ini"),
    ]
    sources = [s for s, _ in git_config_files(win)]
    assert sources == ["git:system", "git:system", "git:xdg", "git:global"]


def test_git_env_overrides_and_local_repo(empty_context: CollectionContext, tmp_path: Path) -> None:
    custom = write(tmp_path / "custom.gitconfig", "[http]\n\tproxy = http://custom.example:1\n")
    write(empty_context.project_dir / ".git" / "config", "[http]\n\tproxy = local.example:2\n")
    write(empty_context.system_root / "etc" / "gitconfig", "[http]\n\tproxy = sys.example:3\n")
    ctx = replace(
        empty_context,
        env={"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": str(custom)},
    )
    assert list(find_tool_proxies(ctx).found) == [
        _ep("git:global:http.proxy", "custom.example", 1),
        _ep("git:local:http.proxy", "local.example", 2),
    ]


def test_pip_config_file_and_site(empty_context: CollectionContext, tmp_path: Path) -> None:
    env_file = write(tmp_path / "pip-env.conf", "[global]\nproxy = env-file.example:1\n")
    write(tmp_path / "venv" / "pip.conf", "[install]\nproxy = site.example:2\n")
    ctx = replace(
        empty_context, env={"PIP_CONFIG_FILE": str(env_file), "VIRTUAL_ENV": str(tmp_path / "venv")}
    )
    assert list(find_tool_proxies(ctx).found) == [
        _ep("pip:site:proxy", "site.example", 2),
        _ep("pip:env-file:proxy", "env-file.example", 1),
    ]


def test_hostile_tool_files(recording: Recording, tmp_path: Path) -> None:
    ctx, _ = recording("hostile")
    found = find_tool_proxies(ctx)
    assert found.found == ()  # "sk-proj-NOT-A-HOST/with/path" is never taken for a host
    assert list(found.errors) == [
        {"source": "git:global:http.proxy", "error": "invalid-url"},
        {"source": "git:global:https.proxy", "error": "invalid-url"},
        {"source": "claude-code:user", "error": "invalid-json"},
        {"source": "claude-code:project", "error": "unexpected-shape"},
        {"source": "claude-code:local", "error": "unexpected-shape"},
    ]
    assert "sk-proj" not in json.dumps(list(found.errors)).lower()


@pytest.mark.parametrize(
    ("path", "content", "error"),
    [
        (".npmrc", b"\x00\x01binary", "binary"),
        (".npmrc", "proxy=http://p.example:1\n" * 70_000, "too-large"),
        (".config/pip/pip.conf", None, "not-a-file"),
    ],
)
def test_hostile_generated_tool_files(
    empty_context: CollectionContext, path: str, content: str | bytes | None, error: str
) -> None:
    target = empty_context.home / path
    if content is None:
        target.mkdir(parents=True)
    else:
        write(target, content)
    found = find_tool_proxies(empty_context)
    source = {".npmrc": "npm:user", ".config/pip/pip.conf": "pip:user"}[path]
    assert list(found.errors) == [{"source": source, "error": error}]


def test_symlink_loop_in_git_config(empty_context: CollectionContext) -> None:
    home = empty_context.home
    (home / ".gitconfig").symlink_to(home / ".gitconfig-b")
    (home / ".gitconfig-b").symlink_to(home / ".gitconfig")
    assert list(find_tool_proxies(empty_context).errors) == [
        {"source": "git:global", "error": "symlink-loop"}
    ]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("wg0", "wireguard"),
        ("wg-office", "wireguard"),
        ("nordlynx", "wireguard"),
        ("NordLynx", "wireguard"),
        ("tailscale0", "tailscale"),
        ("Tailscale", "tailscale"),
        ("ztabcdef1234", "zerotier"),
        ("utun3", "utun"),
        ("tun0", "tun"),
        ("tap1", "tap"),
        ("ppp0", "ppp"),
        ("ipsec0", "ipsec"),
        ("gpd0", "globalprotect"),
        ("cscotun0", "cisco-anyconnect"),
        ("OpenVPN Wintun", "openvpn"),
        ("Wintun Userspace Tunnel", "wintun"),
        ("ProtonVPN TUN", "tun"),
        ("eth0", None),
        ("en0", None),
        ("lo", None),
        ("docker0", None),
        ("veth1a2b3c4", None),
        ("gif0", None),
        ("tunnel-is-a-word", None),
        ("Wi-Fi", None),
    ],
)
def test_tunnel_kinds(name: str, kind: str | None) -> None:
    assert tunnel_kind(name) == kind


def test_tunnels_from_recorded_interfaces(recording: Recording) -> None:
    ctx, _ = recording("linux")
    assert collect(ctx, frozenset({FieldId("proxy.tunnels")})) == {
        "proxy.tunnels": [
            {"name": "tailscale0", "kind": "tailscale"},
            {"name": "tun0", "kind": "tun"},
            {"name": "wg0", "kind": "wireguard"},
            {"name": "ztabcdef1234", "kind": "zerotier"},
        ]
    }


def test_errors_alone_reads_every_source(recording: Recording) -> None:
    ctx, _ = recording("hostile")
    assert collect(ctx, frozenset({FieldId("proxy.errors")})) == {
        "proxy.errors": [
            {"field": "proxy.env", "source": "env:HTTPS_PROXY", "error": "invalid-url"},
            {"field": "proxy.tools", "source": "git:global:http.proxy", "error": "invalid-url"},
            {"field": "proxy.tools", "source": "git:global:https.proxy", "error": "invalid-url"},
            {"field": "proxy.tools", "source": "claude-code:user", "error": "invalid-json"},
            {"field": "proxy.tools", "source": "claude-code:project", "error": "unexpected-shape"},
            {"field": "proxy.tools", "source": "claude-code:local", "error": "unexpected-shape"},
        ]
    }


def test_errors_cover_only_the_sources_read(recording: Recording) -> None:
    ctx, _ = recording("hostile")
    wanted = frozenset({FieldId("proxy.env"), FieldId("proxy.errors")})
    assert collect(ctx, wanted) == {
        "proxy.env": [],
        "proxy.errors": [
            {"field": "proxy.env", "source": "env:HTTPS_PROXY", "error": "invalid-url"}
        ],
    }


def test_full_family_on_each_recording_has_exactly_the_catalog_fields(recording: Recording) -> None:
    for name in ("linux", "macos", "windows", "hostile"):
        ctx, _ = recording(name)
        assert set(collect(ctx, ALL)) == ALL
