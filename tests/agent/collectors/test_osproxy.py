"""OS proxy settings: GNOME, KDE, macOS scutil, Windows WinINet/WinHTTP, from recorded output."""

from __future__ import annotations

import json
import struct
from dataclasses import replace

import pytest

from agent.collectors import CollectionContext
from agent.collectors.osproxy import OsProxySettings, OsWant, gnome, kde, macos, windows
from agent.collectors.osproxy.windows import (
    INTERNET_SETTINGS,
    NETSH,
    parse_connection_blob,
    parse_netsh,
    parse_proxy_server,
)
from agent.collectors.recorded import RecordedRegistry
from attest.catalog.values import ProxyEndpoint

from .conftest import Recording
from .support import command_output, runner_of, write

EVERYTHING = OsWant()


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


# --- GNOME ----------------------------------------------------------------------------------


def _gnome(ctx: CollectionContext, recorded: str) -> CollectionContext:
    return replace(ctx, run=runner_of({gnome.COMMAND: command_output("linux", recorded)}))


def test_gnome_manual_reports_each_protocol_and_never_the_password(
    empty_context: CollectionContext,
) -> None:
    settings = gnome.read(_gnome(empty_context, "gsettings-manual.txt"), EVERYTHING)
    assert settings == OsProxySettings(
        endpoints=(
            _ep("gnome:http", "proxy.corp.example", 3128, creds=True),
            _ep("gnome:https", "proxy.corp.example", 3129),
            _ep("gnome:socks", "fd00::1", 1080, scheme="socks"),
        ),
        auto_detect=False,
    )
    assert "s3cret-pw" not in repr(settings)
    assert "alice" not in repr(settings)


def test_gnome_auto_with_a_pac_url(empty_context: CollectionContext) -> None:
    settings = gnome.read(_gnome(empty_context, "gsettings-auto.txt"), EVERYTHING)
    assert settings == OsProxySettings(
        pac=(_ep("gnome:autoconfig-url", "wpad.corp.example", None),), auto_detect=False
    )
    assert "token" not in repr(settings)


def test_gnome_auto_without_a_url_is_wpad(empty_context: CollectionContext) -> None:
    settings = gnome.read(_gnome(empty_context, "gsettings-wpad.txt"), EVERYTHING)
    assert settings == OsProxySettings(auto_detect=True)


def test_gnome_none_ignores_leftover_hosts(empty_context: CollectionContext) -> None:
    leftover = command_output("linux", "gsettings-manual.txt").replace("'manual'", "'none'")
    ctx = replace(empty_context, run=runner_of({gnome.COMMAND: leftover}))
    assert gnome.read(ctx, EVERYTHING) == OsProxySettings(auto_detect=False)


def test_gnome_absent_and_garbled(empty_context: CollectionContext) -> None:
    assert gnome.read(replace(empty_context, run=runner_of({})), EVERYTHING) == OsProxySettings()
    garbled = replace(empty_context, run=runner_of({gnome.COMMAND: "No such schema\n"}))
    assert gnome.read(garbled, EVERYTHING).errors == (
        {"source": "gnome", "error": "invalid-output"},
    )


def test_gnome_recorded_default_output(empty_context: CollectionContext) -> None:
    settings = gnome.read(_gnome(empty_context, "gsettings-none.txt"), EVERYTHING)
    assert settings == OsProxySettings(auto_detect=False)


# --- KDE ------------------------------------------------------------------------------------


def test_kde_manual_recording(recording: Recording) -> None:
    ctx, _ = recording("linux")
    assert kde.read(ctx, EVERYTHING) == OsProxySettings(
        endpoints=(
            _ep("kde:http", "kde-proxy.corp.example", 8080),
            _ep("kde:https", "kde-proxy.corp.example", 8443),
        ),
        auto_detect=False,
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "ProxyType=2\nProxy Config Script=http://wpad.corp.example/p.pac?u=1\n",
            OsProxySettings(pac=(_ep("kde:pac", "wpad.corp.example", None),), auto_detect=False),
        ),
        ("ProxyType=3\n", OsProxySettings(auto_detect=True)),
        ("ProxyType=0\nhttpProxy=http://ignored 1\n", OsProxySettings(auto_detect=False)),
        (
            "ProxyType=4\nhttpProxy=MY_HTTP_PROXY\nhttpsProxy=UNSET_VAR\n"
            "socksProxy[$e]=socks://socks.corp.example 1080\n",
            OsProxySettings(
                endpoints=(_ep("kde:http", "env-proxy.corp.example", 3128),),
                auto_detect=False,
            ),
        ),
        (
            "ProxyType=1\nsocksProxy=socks://socks.corp.example 1080\n"
            "httpProxy=http://bad host 80x\n",
            OsProxySettings(
                endpoints=(_ep("kde:socks", "socks.corp.example", 1080, scheme="socks"),),
                auto_detect=False,
                errors=({"source": "kde:http", "error": "invalid-url"},),
            ),
        ),
    ],
)
def test_kde_proxy_types(
    empty_context: CollectionContext, body: str, expected: OsProxySettings
) -> None:
    ctx = replace(empty_context, env={"MY_HTTP_PROXY": "http://env-proxy.corp.example:3128"})
    write(kde.kioslaverc(ctx), "[Proxy Settings]\n" + body)
    assert kde.read(ctx, EVERYTHING) == expected


def test_kde_respects_xdg_config_home_and_unreadable_file(empty_context: CollectionContext) -> None:
    ctx = replace(empty_context, env={"XDG_CONFIG_HOME": str(empty_context.home / "cfg")})
    (empty_context.home / "cfg" / "kioslaverc").mkdir(parents=True)
    assert kde.read(ctx, EVERYTHING).errors == ({"source": "kde", "error": "not-a-file"},)


# --- macOS ----------------------------------------------------------------------------------


def test_macos_recording_uses_the_top_level_not_scoped(recording: Recording) -> None:
    ctx, _ = recording("macos")
    settings = macos.read(ctx, EVERYTHING)
    assert settings == OsProxySettings(
        endpoints=(
            _ep("macos:http", "proxy.corp.example", 8080),
            _ep("macos:https", "proxy.corp.example", 8443),
        ),
        pac=(_ep("macos:pac", "wpad.corp.example", None),),
        auto_detect=True,
    )
    assert "scoped-only" not in repr(settings)


def test_macos_direct(empty_context: CollectionContext) -> None:
    ctx = replace(
        empty_context,
        run=runner_of({macos.COMMAND: command_output("macos", "scutil-proxy-direct.txt")}),
    )
    assert macos.read(ctx, EVERYTHING) == OsProxySettings(auto_detect=False)


def test_macos_authenticated_proxy_and_file_pac(empty_context: CollectionContext) -> None:
    output = (
        "<dictionary> {\n  HTTPEnable : 1\n  HTTPPort : 3128\n  HTTPProxy : 10.0.0.1\n"
        "  HTTPProxyAuthenticated : 1\n  ProxyAutoConfigEnable : 1\n"
        "  ProxyAutoConfigURLString : file:///Users/alice/proxy.pac\n}\n"
    )
    settings = macos.read(
        replace(empty_context, run=runner_of({macos.COMMAND: output})), EVERYTHING
    )
    assert settings.endpoints == (_ep("macos:http", "10.0.0.1", 3128, creds=True),)
    assert settings.pac == (_ep("macos:pac", "", None, scheme="file"),)
    assert "alice" not in repr(settings)


def test_macos_scutil_failure_is_an_error(empty_context: CollectionContext) -> None:
    failing = replace(empty_context, run=runner_of({}))
    assert macos.read(failing, EVERYTHING).errors == ({"source": "macos", "error": "unreadable"},)
    odd = replace(empty_context, run=runner_of({macos.COMMAND: "scutil: no\n"}))
    assert macos.read(odd, EVERYTHING).errors == ({"source": "macos", "error": "invalid-output"},)


# --- Windows --------------------------------------------------------------------------------


def test_windows_recording(recording: Recording, forbidden_run: object) -> None:
    ctx, _ = recording("windows", run=forbidden_run)  # the WinHTTP blob parses: no netsh
    assert windows.read(ctx, EVERYTHING) == OsProxySettings(
        endpoints=(
            _ep("wininet:http", "proxy.corp.example", 8080),
            _ep("wininet:https", "proxy.corp.example", 8443),
            _ep("wininet:socks", "socks.corp.example", 1080, scheme="socks"),
            _ep("winhttp:all", "winhttp-proxy.corp.example", 8080),
        ),
        pac=(_ep("wininet:autoconfig-url", "wpad.corp.example", None),),
        auto_detect=True,
    )


def test_windows_reads_only_what_is_wanted(recording: Recording) -> None:
    ctx, _ = recording("windows")
    reads: list[str] = []
    registry = ctx.registry

    def spy(hive: str, key: str, name: str) -> object | None:
        reads.append(name)
        return registry(hive, key, name)

    ctx = replace(ctx, registry=spy)
    windows.read(ctx, OsWant(endpoints=False, pac=True, auto_detect=False))
    assert sorted(reads) == ["AutoConfigURL", "ProxySettingsPerUser"]


def _blob(flags: int, server: str) -> bytes:
    return struct.pack("<IIII", 0x46, 3, flags, len(server)) + server.encode() + b"\0" * 8


def _registry(values: dict[tuple[str, str, str], object]) -> RecordedRegistry:
    return RecordedRegistry({(h, k.lower(), n.lower()): v for (h, k, n), v in values.items()})


def test_windows_disabled_manual_proxy_is_not_in_effect(empty_context: CollectionContext) -> None:
    registry = _registry(
        {
            ("HKCU", INTERNET_SETTINGS, "ProxyEnable"): 0,
            ("HKCU", INTERNET_SETTINGS, "ProxyServer"): "proxy.corp.example:8080",
            ("HKCU", INTERNET_SETTINGS + r"\Connections", "DefaultConnectionSettings"): _blob(
                0x01, ""
            ),
        }
    )
    ctx = replace(empty_context, platform="windows", registry=registry)
    assert windows.read(ctx, EVERYTHING) == OsProxySettings(auto_detect=False)


def test_windows_machine_wide_policy_reads_hklm(empty_context: CollectionContext) -> None:
    policy = r"SOFTWARE\Policies\Microsoft\Windows\CurrentVersion\Internet Settings"
    registry = _registry(
        {
            ("HKLM", policy, "ProxySettingsPerUser"): 0,
            ("HKLM", INTERNET_SETTINGS, "ProxyEnable"): 1,
            ("HKLM", INTERNET_SETTINGS, "ProxyServer"): "http://machine-proxy.corp.example:3128",
            ("HKCU", INTERNET_SETTINGS, "ProxyEnable"): 1,
            ("HKCU", INTERNET_SETTINGS, "ProxyServer"): "user-proxy.corp.example:1",
            ("HKLM", INTERNET_SETTINGS, "AutoDetect"): 1,
        }
    )
    ctx = replace(empty_context, platform="windows", registry=registry)
    assert windows.read(ctx, EVERYTHING) == OsProxySettings(
        endpoints=(_ep("wininet:all", "machine-proxy.corp.example", 3128),), auto_detect=True
    )


def test_windows_unparseable_winhttp_blob_falls_back_to_netsh(
    empty_context: CollectionContext,
) -> None:
    connections = INTERNET_SETTINGS + r"\Connections"
    registry = _registry({("HKLM", connections, "WinHttpSettings"): b"\x28\x00"})
    netsh = command_output("windows", "netsh-winhttp-proxy.txt")
    ctx = replace(
        empty_context, platform="windows", registry=registry, run=runner_of({NETSH: netsh})
    )
    assert windows.read(ctx, OsWant(pac=False, auto_detect=False)).endpoints == (
        _ep("winhttp:http", "winhttp-proxy.corp.example", 8080),
        _ep("winhttp:https", "winhttp-proxy.corp.example", 8443),
    )
    ctx = replace(ctx, run=runner_of({}))
    assert windows.read(ctx, EVERYTHING).errors == (
        {"source": "winhttp", "error": "invalid-output"},
    )


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [
        (
            "netsh-winhttp-proxy.txt",
            "http=winhttp-proxy.corp.example:8080;https=winhttp-proxy.corp.example:8443",
        ),
        ("netsh-winhttp-direct.txt", ""),
        ("netsh-winhttp-proxy-de.txt", "proxy.corp.example:3128"),
    ],
)
def test_parse_netsh(recorded: str, expected: str) -> None:
    assert parse_netsh(command_output("windows", recorded)) == expected


def test_parse_proxy_server_forms() -> None:
    assert parse_proxy_server("proxy:80") == [("all", "proxy:80")]
    assert parse_proxy_server("HTTP=a:1; https=b:2;ftp=c:3;socks=d:4;gopher=e:5") == [
        ("http", "a:1"),
        ("https", "b:2"),
        ("socks", "d:4"),
    ]


@pytest.mark.parametrize("blob", [None, "text", b"", b"\x46\x00\x00\x00" * 3, _blob(3, "xyz")[:18]])
def test_parse_connection_blob_rejects_short_or_odd_values(blob: object) -> None:
    assert parse_connection_blob(blob) is None


def test_recorded_registry_blobs_parse(recording: Recording) -> None:
    ctx, _ = recording("windows")
    blob = parse_connection_blob(
        ctx.registry("HKCU", INTERNET_SETTINGS + r"\Connections", "DefaultConnectionSettings")
    )
    assert blob is not None
    assert blob.flags == 0x0F
    assert blob.proxy_server.startswith("http=proxy.corp.example:8080;")
    assert json.dumps(windows.read(ctx, EVERYTHING).pac).count("alice") == 0
