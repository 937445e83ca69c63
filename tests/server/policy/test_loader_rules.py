"""Every key of every rule family is read from the file: one table of policy documents and the
exact rule (or token settings) each must build. A key the loader ignored, or a default it got
wrong, changes the built object and fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from attest.catalog import FieldId
from attest.catalog.hosts import official_hosts
from attest.keys import KeyClass
from server.policy import (
    PolicyError,
    PolicySyntaxError,
    RuleMode,
    TokenSettings,
    load_policy,
    parse_policy,
)
from server.policy.baseurl import BaseUrlRule
from server.policy.globs import host_glob, name_glob, zone_glob
from server.policy.loader import MAX_POLICY_BYTES
from server.policy.model import TokenBinding
from server.policy.proxy import ProxyRule
from server.policy.rules import ClockSkewRule, KeyClassRule, RequiredFieldsRule
from server.policy.timezone import TimezoneRule
from server.policy.tunnels import TunnelRule
from server.policy.usage import UsageRule

HEAD = '[policy]\nversion = "v1"\n'
REPORT = RuleMode.REPORT
SYNTAX_FIX = "Fix the TOML syntax there (strings need quotes, arrays commas)."

RULES: list[tuple[str, str, object]] = [
    (
        "key-class-two-report",
        '[rules.key_class]\nallowed = ["tpm2", "software", "tpm2"]\nmode = "report"\n',
        KeyClassRule(allowed=frozenset({KeyClass.TPM2, KeyClass.SOFTWARE}), mode=REPORT),
    ),
    (
        "key-class-enforce-by-default",
        '[rules.key_class]\nallowed = ["hardware-unverified"]\n',
        KeyClassRule(allowed=frozenset({KeyClass.HARDWARE_UNVERIFIED})),
    ),
    ("skew-lowest", "[rules.clock_skew]\nmax_skew_s = 1\n", ClockSkewRule(max_skew_s=1)),
    (
        "skew-highest",
        '[rules.clock_skew]\nmax_skew_s = 3600\nmode = "enforce"\n',
        ClockSkewRule(max_skew_s=3600),
    ),
    ("required-none", "[rules.required_fields]\n", RequiredFieldsRule()),
    (
        "required-listed",
        '[rules.required_fields]\nfields = ["timezone.iana", "proxy.env", "timezone.iana"]\n',
        RequiredFieldsRule(fields=frozenset({FieldId("timezone.iana"), FieldId("proxy.env")})),
    ),
    (
        "timezone-every-key",
        "[rules.timezone]\n"
        'allow = ["Europe/*", "asia/calcutta"]\n'
        'deny = ["Europe/Paris"]\n'
        "unsafe_allow_unknown_zone = true\n"
        "unsafe_allow_offset_mismatch = true\n"
        "unsafe_pass_if_not_sent = true\n"
        'mode = "report"\n',
        TimezoneRule(
            allow=(zone_glob("Europe/*"), zone_glob("Asia/Kolkata")),
            deny=(zone_glob("Europe/Paris"),),
            unsafe_allow_unknown_zone=True,
            unsafe_allow_offset_mismatch=True,
            unsafe_pass_if_not_sent=True,
            mode=REPORT,
        ),
    ),
    (
        "timezone-allow-only",
        '[rules.timezone]\nallow = ["Etc/UTC"]\nunsafe_allow_unknown_zone = false\n',
        TimezoneRule(allow=(zone_glob("Etc/UTC"),)),
    ),
    ("base-url-defaults", "[rules.base_url]\n", BaseUrlRule()),
    (
        "base-url-every-key",
        "[rules.base_url]\n"
        'allowed_hosts = ["gw.example.internal", "*.example.internal"]\n'
        "allow_official = false\n"
        "allow_localhost = true\n"
        "allow_private_network = true\n"
        'fields = ["baseurl.tools"]\n'
        "unsafe_pass_if_not_sent = true\n"
        "unsafe_ignore_unreadable_sources = true\n"
        'mode = "report"\n'
        "[rules.base_url.official_hosts]\n"
        'anthropic = ["api.example.com", "*.example.com"]\n'
        "openai = []\n",
        BaseUrlRule(
            allowed_hosts=(host_glob("gw.example.internal"), host_glob("*.example.internal")),
            allow_official=False,
            allow_localhost=True,
            allow_private_network=True,
            official=official_hosts(
                {"anthropic": ("api.example.com", "*.example.com"), "openai": ()}
            ),
            fields=(FieldId("baseurl.tools"),),
            unsafe_pass_if_not_sent=True,
            unsafe_ignore_unreadable_sources=True,
            mode=REPORT,
        ),
    ),
    (
        "base-url-official-kept",
        "[rules.base_url]\nallow_official = true\nunsafe_allow_any_host = true\n",
        BaseUrlRule(unsafe_allow_any_host=True),
    ),
    ("proxy-none-at-all", "[rules.proxy]\nallowed_hosts = []\n", ProxyRule()),
    (
        "proxy-every-key",
        "[rules.proxy]\n"
        'allowed_hosts = ["proxy.example.internal"]\n'
        "require_proxy = true\n"
        'fields = ["proxy.pac", "proxy.env"]\n'
        "unsafe_pass_if_not_sent = true\n"
        "unsafe_ignore_unreadable_sources = true\n"
        'mode = "report"\n',
        ProxyRule(
            allowed_hosts=(host_glob("proxy.example.internal"),),
            require_proxy=True,
            fields=(FieldId("proxy.pac"), FieldId("proxy.env")),
            unsafe_pass_if_not_sent=True,
            unsafe_ignore_unreadable_sources=True,
            mode=REPORT,
        ),
    ),
    (
        "proxy-any-host-required",
        "[rules.proxy]\nunsafe_allow_any_host = true\nrequire_proxy = true\n",
        ProxyRule(unsafe_allow_any_host=True, require_proxy=True),
    ),
    (
        "usage-both",
        "[rules.usage]\nmax_networks_per_token = 1\nmax_requests_per_minute = 1000000\n",
        UsageRule(max_networks_per_token=1, max_requests_per_minute=1_000_000),
    ),
    (
        "usage-networks-only",
        '[rules.usage]\nmax_networks_per_token = 1000\nmode = "report"\n',
        UsageRule(max_networks_per_token=1000, max_requests_per_minute=None, mode=REPORT),
    ),
    (
        "usage-rate-only",
        "[rules.usage]\nmax_requests_per_minute = 1\n",
        UsageRule(max_networks_per_token=None, max_requests_per_minute=1),
    ),
    (
        "tunnels-every-key",
        "[rules.tunnels]\n"
        'deny_kinds = ["wireguard"]\n'
        'deny_names = ["wg*"]\n'
        'allow_kinds = ["openvpn"]\n'
        'allow_names = ["corpvpn*"]\n'
        "unsafe_pass_if_not_sent = true\n",
        TunnelRule(
            deny_kinds=(name_glob("wireguard"),),
            deny_names=(name_glob("wg*"),),
            allow_kinds=(name_glob("openvpn"),),
            allow_names=(name_glob("corpvpn*"),),
            unsafe_pass_if_not_sent=True,
        ),
    ),
    (
        "tunnels-deny-names-only",
        '[rules.tunnels]\ndeny_names = ["tailscale*"]\n',
        TunnelRule(deny_names=(name_glob("tailscale*"),)),
    ),
    (
        "tunnels-allow-kinds-only",
        '[rules.tunnels]\nallow_kinds = ["openvpn"]\n',
        TunnelRule(allow_kinds=(name_glob("openvpn"),)),
    ),
]


@pytest.mark.parametrize(("text", "rule"), [c[1:] for c in RULES], ids=[c[0] for c in RULES])
def test_each_table_builds_exactly_this_rule(text: str, rule: object) -> None:
    policy = parse_policy(HEAD + text, source="p.toml")
    assert policy.rules == (rule,)
    assert policy.version == "v1"


TOKENS: list[tuple[str, str, TokenSettings]] = [
    ("absent", "", TokenSettings(ttl_s=900, audience="envattest", binding=TokenBinding.BEARER)),
    ("empty", "[token]\n", TokenSettings()),
    ("ttl-lowest", "[token]\nttl_s = 60\n", TokenSettings(ttl_s=60)),
    ("ttl-highest", "[token]\nttl_s = 86400\n", TokenSettings(ttl_s=86_400)),
    ("audience", '[token]\naudience = "gw"\n', TokenSettings(audience="gw")),
    ("dpop", '[token]\nbinding = "dpop"\n', TokenSettings(binding=TokenBinding.DPOP)),
    ("bearer", '[token]\nbinding = "bearer"\n', TokenSettings(binding=TokenBinding.BEARER)),
]


@pytest.mark.parametrize(("text", "token"), [c[1:] for c in TOKENS], ids=[c[0] for c in TOKENS])
def test_token_settings(text: str, token: TokenSettings) -> None:
    rules = "[rules.clock_skew]\nmax_skew_s = 5\n"
    assert parse_policy(HEAD + text + rules, source="p.toml").token == token


def test_version_and_description_limits() -> None:
    rules = "[rules.clock_skew]\nmax_skew_s = 5\n"
    version = "A-z0.9_:+" + "x" * 55
    text = f'[policy]\nversion = "{version}"\ndescription = """{"d" * 999}\n"""\n' + rules
    assert parse_policy(text, source="p.toml").version == version
    with pytest.raises(PolicyError, match=r"line 3: policy\.description: .* is not valid"):
        parse_policy(text.replace("d" * 999, "d" * 1000), source="p.toml")
    with pytest.raises(PolicyError, match=r"line 2: policy\.version: .* is not valid"):
        parse_policy(text.replace(version, version + "x"), source="p.toml")


def test_a_file_of_exactly_the_size_limit_loads(tmp_path: Path) -> None:
    text = (HEAD + "[rules.clock_skew]\nmax_skew_s = 5\n").encode()
    path = tmp_path / "p.toml"
    path.write_bytes(text + b"#" * (MAX_POLICY_BYTES - len(text)))
    assert load_policy(path).version == "v1"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a = 1\nb = = 2\n", 2, "p.toml, line 2: not valid TOML: Invalid value at column 5. "),
        (
            "[policy",
            None,
            "p.toml: not valid TOML: Expected ']' at the end of a table declaration (at end of "
            "document). ",
        ),
    ],
)
def test_syntax_errors(text: str, line: int | None, message: str) -> None:
    with pytest.raises(PolicySyntaxError) as caught:
        parse_policy(text, source="p.toml")
    assert caught.value.line == line
    assert str(caught.value) == message + SYNTAX_FIX


def test_load_errors_in_full(tmp_path: Path) -> None:
    absent = tmp_path / "absent.toml"
    with pytest.raises(PolicyError) as caught:
        load_policy(absent)
    assert type(caught.value) is PolicyError
    assert str(caught.value) == (
        f"{absent}: cannot read the policy file (No such file or directory). "
        "Check the path and its permissions."
    )
    huge = tmp_path / "huge.toml"
    huge.write_bytes(b"#" * (MAX_POLICY_BYTES + 1))
    with pytest.raises(PolicyError) as caught:
        load_policy(huge)
    assert type(caught.value) is PolicyError
    assert (
        str(caught.value)
        == f"{huge}: the policy file is larger than 1 MiB. Is this the right file?"
    )
    latin = tmp_path / "latin1.toml"
    latin.write_bytes(b'[policy]\nversion = "caf\xe9"\n')
    with pytest.raises(PolicySyntaxError) as syntax:
        load_policy(latin)
    assert str(syntax.value) == f"{latin}: the policy file is not UTF-8. Save it as UTF-8."
