"""Loading policy files: the shipped examples load, every invalid vector names its line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from attest.catalog import FieldId
from attest.keys import KeyClass
from server.policy import (
    PolicyError,
    PolicySchemaError,
    PolicySyntaxError,
    RuleMode,
    TokenSettings,
    load_policy,
    loader,
    parse_policy,
    policy_warnings,
)
from server.policy.baseurl import BaseUrlRule
from server.policy.loader import FAMILIES
from server.policy.model import TokenBinding
from server.policy.proxy import ProxyRule
from server.policy.rules import ClockSkewRule, KeyClassRule, RequiredFieldsRule
from server.policy.timezone import TimezoneRule
from server.policy.tunnels import TunnelRule
from tests.server.policy.conftest import EXAMPLES, VECTORS

INVALID = sorted((VECTORS / "invalid").glob("*.toml"))
ERRORS = {"PolicySchemaError": PolicySchemaError, "PolicySyntaxError": PolicySyntaxError}

MINIMAL = """
[policy]
version = "v1"

[rules.clock_skew]
max_skew_s = 300
"""


def test_every_example_loads() -> None:
    examples = sorted(EXAMPLES.glob("policy-*.toml"))
    assert len(examples) == 3
    for path in examples:
        policy = load_policy(path)
        assert policy.rules, path
        assert policy.version.startswith("example-")


def test_examples_hard_code_no_real_hosts() -> None:
    for path in EXAMPLES.glob("policy-*.toml"):
        for rule in load_policy(path).rules:
            for glob in getattr(rule, "allowed_hosts", ()):
                assert glob.pattern.endswith("example.internal"), (path, glob)


def test_strict_example_builds_the_documented_rules() -> None:
    policy = load_policy(EXAMPLES / "policy-strict-hardware.toml")
    assert policy.token == TokenSettings(ttl_s=600, audience="llm-gateway")
    by_name = {rule.name: rule for rule in policy.rules}
    assert by_name["key_class"] == KeyClassRule(allowed=frozenset({KeyClass.TPM2}))
    assert by_name["clock_skew"] == ClockSkewRule(max_skew_s=120)
    required = by_name["required_fields"]
    assert isinstance(required, RequiredFieldsRule)
    assert FieldId("proxy.env") in required.fields
    proxy = by_name["proxy"]
    assert isinstance(proxy, ProxyRule)
    assert proxy.require_proxy
    assert proxy.fields == (FieldId("proxy.env"),)
    assert [g.pattern for g in proxy.allowed_hosts] == [
        "proxy.example.internal",
        "*.proxy.example.internal",
    ]
    assert isinstance(by_name["base_url"], BaseUrlRule)
    assert by_name["tunnels"].mode is RuleMode.REPORT


def test_report_only_example_loads_with_a_warning() -> None:
    policy = load_policy(EXAMPLES / "policy-permissive-report-only.toml")
    assert all(rule.mode is RuleMode.REPORT for rule in policy.rules)
    assert any("no rule enforces" in w for w in policy_warnings(policy))


def test_defaults_when_keys_are_omitted() -> None:
    policy = parse_policy(
        MINIMAL + '[rules.timezone]\ndeny = ["Etc/UTC"]\n[rules.base_url]\n', source="p.toml"
    )
    assert policy.token == TokenSettings()
    clock, zone, base = policy.rules
    assert clock.mode is RuleMode.ENFORCE
    assert isinstance(zone, TimezoneRule)
    assert not zone.unsafe_allow_unknown_zone
    assert base == BaseUrlRule()


def test_rules_keep_file_order() -> None:
    text = MINIMAL + '[rules.tunnels]\ndeny_kinds = ["*"]\n[rules.key_class]\nallowed = ["tpm2"]\n'
    names = [r.name for r in parse_policy(text, source="p.toml").rules]
    assert names == ["clock_skew", "tunnels", "key_class"]


def test_tunnel_rule_from_inline_table() -> None:
    text = MINIMAL + '[rules.tunnels]\nallow_names = ["corpvpn*"]\nmode = "report"\n'
    rule = parse_policy(text, source="p.toml").rules[1]
    assert isinstance(rule, TunnelRule)
    assert rule.mode is RuleMode.REPORT


def _expectations(
    path: Path,
) -> tuple[type[PolicyError], int, str | None, str, str | None]:
    text = path.read_text()
    marked = [n for n, line in enumerate(text.splitlines(), 1) if "# <- error" in line]
    assert len(marked) == 1, f"{path.name}: mark exactly one line with '# <- error'"
    key = re.search(r"expect-key: (\S+)", text)
    message = re.search(r"expect: (.+)", text)
    kind = re.search(r"expect-error: (\w+)", text)
    fix = re.search(r"expect-fix: (.+)", text)
    assert message is not None, f"{path.name}: add '# expect: <regex>'"
    error = ERRORS[kind.group(1)] if kind else PolicySchemaError
    expected_fix = fix.group(1).strip() if fix else None
    return error, marked[0], key.group(1) if key else None, message.group(1).strip(), expected_fix


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_policy_names_line_and_key(path: Path) -> None:
    error, line, key, message, fix = _expectations(path)
    with pytest.raises(error, match=rf"line {line}:") as caught:
        load_policy(path)
    assert caught.value.line == line
    assert caught.value.source == str(path)
    assert str(caught.value).startswith(f"{path}, line {line}: ")
    if key is not None:
        assert caught.value.key == key
        assert f": {key}: " in str(caught.value)
    told = f"{caught.value.problem}. {caught.value.fix}"
    assert re.match(message, told), f"{told!r} does not start with {message!r}"
    assert caught.value.fix, "every error says what to do"
    assert str(caught.value).endswith(f". {caught.value.fix}")
    if key is None:
        assert caught.value.key is None
    if fix is not None:
        assert re.search(fix, caught.value.fix), caught.value.fix


def test_invalid_vectors_cover_the_cases() -> None:
    assert len(INVALID) >= 80


def test_error_message_format() -> None:
    text = MINIMAL + '[rules.timezone]\nallow = ["Europe/*", "Asia/*", "Nowhere/[x]"]\n'
    with pytest.raises(PolicySchemaError, match=r"^p\.toml, line 8: rules\.timezone\.allow\[2\]: "):
        parse_policy(text, source="p.toml")


def test_syntax_error_reports_toml_position() -> None:
    with pytest.raises(PolicySyntaxError, match=r"p\.toml, line 2: not valid TOML: .* column \d+"):
        parse_policy('[policy]\nversion = "v1\n', source="p.toml")


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"cannot read the policy file.*Check the path"):
        load_policy(tmp_path / "absent.toml")


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[policy]\nversion = "caf\xe9"\n')
    with pytest.raises(PolicySyntaxError, match=r"not UTF-8.*Save it as UTF-8"):
        load_policy(path)


def test_oversized_file(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    path.write_bytes(b"#" * (1024 * 1024 + 1))
    with pytest.raises(PolicyError, match="larger than 1 MiB"):
        load_policy(path)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_rejects_unknown_keys(family: str) -> None:
    text = f'[policy]\nversion = "v1"\n[rules.{family}]\nbogus = 1\n'
    with pytest.raises(PolicySchemaError, match=rf"line 4: rules\.{family}\.bogus: unknown key"):
        parse_policy(text, source="p.toml")


def test_format_in_the_loader_docstring_parses() -> None:
    doc = loader.__doc__ or ""
    block = doc.split("::", 1)[1].split("\n\n", 1)[1].split("\nAbsent signals")[0]
    text = "\n".join(line.removeprefix("    ") for line in block.splitlines())
    policy = parse_policy(text, source="docstring")
    assert [r.name for r in policy.rules] == list(FAMILIES)
    assert policy.token == TokenSettings(
        ttl_s=900, audience="llm-gateway", binding=TokenBinding.DPOP
    )
