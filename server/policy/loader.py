"""The policy file: TOML, validated at start, every error naming the file, line and key.

Format (complete; every other key or table is an error)::

    [policy]
    version = "2026-11-01"        # required; letters, digits, . _ : + -  (in tokens and audit)
    description = "..."           # optional, free text

    [token]                       # optional; defaults ttl_s = 900, audience = "envattest"
    ttl_s = 900                   # access-token lifetime, 60 ..= 86400 seconds
    audience = "llm-gateway"      # the token's aud; what your gateway checks
    binding = "dpop"              # "bearer" (default) or "dpop": each use needs a proof
                                  # signed by the device key (RFC 9449)

    # Each [rules.<family>] table adds one rule; rules run in file order. Every rule takes
    # mode = "enforce" (default: a failure denies) or "report" (a failure is only recorded).
    [rules.key_class]
    allowed = ["tpm2", "hardware-unverified"]     # of tpm2 | hardware-unverified | software

    [rules.clock_skew]
    max_skew_s = 300                              # 1 ..= 3600

    [rules.required_fields]                       # the manifest's enforce fields must be sent,
    fields = ["timezone.iana"]                    # plus these catalog fields (optional)

    [rules.timezone]                              # at least one of allow / deny
    allow = ["Europe/*"]                          # zone globs; deny wins over allow
    deny = []                                     # matched against canonical tzdata names
    unsafe_allow_unknown_zone = false             # pass when timezone.iana is null
    unsafe_allow_offset_mismatch = false          # pass when the UTC offset is not the zone's

    [rules.base_url]                              # baseurl.env and baseurl.tools
    allowed_hosts = ["llm-gateway.example.internal", "*.example.internal"]
    allow_official = true
    allow_localhost = false
    allow_private_network = false
    fields = ["baseurl.env", "baseurl.tools"]     # optional, a subset
    unsafe_allow_any_host = false
    unsafe_ignore_unreadable_sources = false      # pass although baseurl.errors names a source
    [rules.base_url.official_hosts]               # optional: replaces the shipped hosts of
    anthropic = ["api.anthropic.com"]             # the providers listed (attest.catalog.hosts)

    [rules.proxy]                                 # proxy.env, .os, .pac, .tools
    allowed_hosts = ["proxy.example.internal"]    # required; [] means "no proxy at all"
    require_proxy = false                         # true: at least one proxy must be set
    fields = ["proxy.env", "proxy.os", "proxy.pac", "proxy.tools"]
    unsafe_allow_any_host = false
    unsafe_ignore_unreadable_sources = false      # pass although proxy.errors names a source

    [rules.usage]                                 # verifier-observed, checked at forward auth
    max_networks_per_token = 2                    # distinct client /24 (IPv4) or /56 (IPv6)
    max_requests_per_minute = 600                 # per token, summed over replicas

    [rules.tunnels]                               # proxy.tunnels; at least one list
    deny_kinds = ["wireguard"]                    # name globs over the interface kind
    deny_names = []                               # ... and over the interface name
    allow_kinds = []                              # when any allow list is given,
    allow_names = ["corpvpn*"]                    # every tunnel must match one

Absent signals: a rule whose field was not sent fails with "field X was not sent (not
consented)"; in report mode that is only recorded. ``unsafe_pass_if_not_sent = true`` (timezone,
base_url, proxy, tunnels) makes the rule pass instead, which lets a user dodge the rule by
withholding consent: hence the name.

Unreadable sources: base_url and proxy fail when the agent reports (in ``baseurl.errors`` /
``proxy.errors``) a source of a checked field it could not read or parse, and when that
errors field was not sent; ``unsafe_ignore_unreadable_sources = true`` opts out.

Fail closed: a file without rules is an error at load (it would deny every device), and
``Policy.evaluate`` denies with no rules as well. A policy whose rules are all ``report`` loads
(it is the rollout mode) and ``policy_warnings`` says that it allows every device.
Globs are described in ``server.policy.globs``; a bare ``"*"`` in an allow list is refused.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path

from attest.catalog import CATALOG, FieldId
from attest.catalog.hosts import DEFAULTS, OTHER, PROVIDERS, OfficialHosts, official_hosts
from attest.keys import KeyClass
from server.policy.baseurl import BASEURL_FIELDS, BaseUrlRule
from server.policy.errors import PolicyError, PolicySyntaxError
from server.policy.globs import host_glob, name_glob
from server.policy.model import Policy, Rule, RuleMode, TokenBinding, TokenSettings
from server.policy.positions import KeyPath
from server.policy.proxy import PROXY_FIELDS, ProxyRule
from server.policy.rules import ClockSkewRule, KeyClassRule, RequiredFieldsRule
from server.policy.signals import UNSAFE_IGNORE
from server.policy.timezone import TimezoneRule, zone_pattern
from server.policy.tomltable import EXAMPLES_HINT, TomlDocument, TomlTable
from server.policy.tunnels import TunnelRule
from server.policy.usage import USAGE_KEYS, usage_rule

MAX_POLICY_BYTES = 1024 * 1024
TTL_RANGE = (60, 86_400)
SKEW_RANGE = (1, 3_600)
_VERSION = re.compile(r"^[A-Za-z0-9._:+-]{1,64}$")
_AUDIENCE = re.compile(r"^\S{1,256}$")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")

# (1) rule families: one builder per [rules.<family>] table (DESIGN: Policy)

_COMMON = ("mode",)
_ABSENCE = ("unsafe_pass_if_not_sent",)


def _key_class(table: TomlTable, mode: RuleMode) -> Rule:
    known = ", ".join(k.value for k in KeyClass)
    fix = f"List key classes from: {known}."
    allowed: set[KeyClass] = set()
    table.require("allowed", fix)
    for path, item in table.strings("allowed", fix):
        try:
            allowed.add(KeyClass(item))
        except ValueError:
            raise table.doc.error(path, f"{item!r} is not a key class", fix) from None
    if not allowed:
        raise table.error("allowed", "is empty, so every device would be denied", fix)
    return KeyClassRule(allowed=frozenset(allowed), mode=mode)


def _clock_skew(table: TomlTable, mode: RuleMode) -> Rule:
    max_skew_s = table.integer("max_skew_s", None, SKEW_RANGE, "seconds")
    return ClockSkewRule(max_skew_s=max_skew_s, mode=mode)


def _required_fields(table: TomlTable, mode: RuleMode) -> Rule:
    fields = table.field_ids("fields", tuple(CATALOG)) or ()
    return RequiredFieldsRule(fields=frozenset(fields), mode=mode)


def _timezone(table: TomlTable, mode: RuleMode) -> Rule:
    allow = table.globs(
        "allow", zone_pattern, everything_fix="Remove allow to check only deny, or list zones."
    )
    deny = table.globs("deny", zone_pattern)
    if not (allow or deny):
        raise table.error(None, "checks nothing", "Add allow or deny zone globs, or remove it.")
    return TimezoneRule(
        allow=allow,
        deny=deny,
        unsafe_allow_unknown_zone=table.flag("unsafe_allow_unknown_zone"),
        unsafe_allow_offset_mismatch=table.flag("unsafe_allow_offset_mismatch"),
        unsafe_pass_if_not_sent=table.flag("unsafe_pass_if_not_sent"),
        mode=mode,
    )


def _fields_fix(fields: tuple[FieldId, ...]) -> str:
    return f"List some of {', '.join(fields)}, or remove fields to check them all."


_ANY_HOST = "If every host really is fine, set unsafe_allow_any_host = true instead."


def _official_hosts(table: TomlTable) -> OfficialHosts:
    """``[rules.base_url.official_hosts]``: provider = [host patterns], replacing defaults."""
    providers = tuple(sorted(PROVIDERS - {OTHER}))
    fix = 'Write provider = ["api.example.com", "*.example.com"] for providers you list.'
    sub = table.subtable("official_hosts", fix, providers, noun=("provider", "providers"))
    if sub is None:
        return DEFAULTS
    overrides: dict[str, tuple[str, ...]] = {}
    for provider in sub.data:
        patterns = sub.strings(provider, fix)
        for path, pattern in patterns:
            try:
                official_hosts({provider: (pattern,)})
            except ValueError as exc:
                raise table.doc.error(path, str(exc), "Fix or remove this pattern.") from None
        overrides[provider] = tuple(p for _, p in patterns)
    return official_hosts(overrides)


def _base_url(table: TomlTable, mode: RuleMode) -> Rule:
    allowed_hosts = table.globs("allowed_hosts", host_glob, everything_fix=_ANY_HOST)
    any_host = table.flag("unsafe_allow_any_host")
    if any_host and allowed_hosts:
        raise table.error(
            "unsafe_allow_any_host",
            "makes allowed_hosts meaningless",
            "Remove one of unsafe_allow_any_host and allowed_hosts.",
        )
    fields = table.field_ids("fields", BASEURL_FIELDS)
    if fields == ():
        raise table.error(
            "fields", "is empty, so the rule checks nothing", _fields_fix(BASEURL_FIELDS)
        )
    return BaseUrlRule(
        allowed_hosts=allowed_hosts,
        allow_official=table.flag("allow_official", True),
        allow_localhost=table.flag("allow_localhost"),
        allow_private_network=table.flag("allow_private_network"),
        unsafe_allow_any_host=any_host,
        official=_official_hosts(table),
        fields=fields or BASEURL_FIELDS,
        unsafe_pass_if_not_sent=table.flag("unsafe_pass_if_not_sent"),
        unsafe_ignore_unreadable_sources=table.flag(UNSAFE_IGNORE),
        mode=mode,
    )


def _proxy(table: TomlTable, mode: RuleMode) -> Rule:
    any_host = table.flag("unsafe_allow_any_host")
    fix = 'List your proxies, as in allowed_hosts = ["proxy.example.internal"]; [] means none.'
    if not any_host and "allowed_hosts" not in table.data:
        raise table.error("allowed_hosts", "is missing", fix)
    allowed_hosts = table.globs("allowed_hosts", host_glob, everything_fix=_ANY_HOST)
    if any_host and allowed_hosts:
        raise table.error(
            "unsafe_allow_any_host",
            "makes allowed_hosts meaningless",
            "Remove one of unsafe_allow_any_host and allowed_hosts.",
        )
    require = table.flag("require_proxy")
    if require and not (allowed_hosts or any_host):
        raise table.error("require_proxy", "can never pass with an empty allowed_hosts", fix)
    fields = table.field_ids("fields", PROXY_FIELDS)
    if fields == ():
        raise table.error(
            "fields", "is empty, so the rule checks nothing", _fields_fix(PROXY_FIELDS)
        )
    return ProxyRule(
        allowed_hosts=allowed_hosts,
        require_proxy=require,
        unsafe_allow_any_host=any_host,
        fields=fields or PROXY_FIELDS,
        unsafe_pass_if_not_sent=table.flag("unsafe_pass_if_not_sent"),
        unsafe_ignore_unreadable_sources=table.flag(UNSAFE_IGNORE),
        mode=mode,
    )


def _tunnels(table: TomlTable, mode: RuleMode) -> Rule:
    everything = "Remove the allow list, or list the kinds or names you accept."
    rule = TunnelRule(
        deny_kinds=table.globs("deny_kinds", name_glob),
        deny_names=table.globs("deny_names", name_glob),
        allow_kinds=table.globs("allow_kinds", name_glob, everything_fix=everything),
        allow_names=table.globs("allow_names", name_glob, everything_fix=everything),
        unsafe_pass_if_not_sent=table.flag("unsafe_pass_if_not_sent"),
        mode=mode,
    )
    if not (rule.deny_kinds or rule.deny_names or rule.allow_kinds or rule.allow_names):
        raise table.error(
            None, "checks nothing", "Add deny_kinds, deny_names, allow_kinds or allow_names."
        )
    return rule


_Builder = Callable[[TomlTable, RuleMode], Rule]
FAMILIES: Mapping[str, tuple[_Builder, tuple[str, ...]]] = {
    "key_class": (_key_class, ("allowed",)),
    "clock_skew": (_clock_skew, ("max_skew_s",)),
    "required_fields": (_required_fields, ("fields",)),
    "timezone": (
        _timezone,
        ("allow", "deny", "unsafe_allow_unknown_zone", "unsafe_allow_offset_mismatch", *_ABSENCE),
    ),
    "base_url": (
        _base_url,
        (
            "allowed_hosts",
            "allow_official",
            "allow_localhost",
            "allow_private_network",
            "fields",
            "unsafe_allow_any_host",
            "official_hosts",
            UNSAFE_IGNORE,
            *_ABSENCE,
        ),
    ),
    "proxy": (
        _proxy,
        (
            "allowed_hosts",
            "require_proxy",
            "fields",
            "unsafe_allow_any_host",
            UNSAFE_IGNORE,
            *_ABSENCE,
        ),
    ),
    "usage": (usage_rule, USAGE_KEYS),
    "tunnels": (
        _tunnels,
        ("deny_kinds", "deny_names", "allow_kinds", "allow_names", *_ABSENCE),
    ),
}


# (2) the document: [policy], [token], [rules]


def _token(root: TomlTable) -> TokenSettings:
    table = root.subtable(
        "token", "Write [token] with ttl_s and audience.", ("ttl_s", "audience", "binding")
    )
    if table is None:
        return TokenSettings()
    default = TokenSettings()
    return TokenSettings(
        ttl_s=table.integer("ttl_s", default.ttl_s, TTL_RANGE, "seconds"),
        audience=table.text(
            "audience",
            default.audience,
            _AUDIENCE,
            "Set audience to what your gateway expects in aud: 1-256 characters, no spaces.",
        ),
        binding=table.choice("binding", TokenBinding, default.binding),
    )


def _rules(root: TomlTable) -> tuple[Rule, ...]:
    no_rules = (
        "Add at least one [rules.<family>] table; an empty policy would deny every device "
        f"({EXAMPLES_HINT})."
    )
    families = tuple(FAMILIES)
    rules_table = root.subtable("rules", no_rules, families, noun=("rule family", "rule families"))
    if rules_table is None or not rules_table.data:
        path: KeyPath = ("rules",) if rules_table is not None else ()
        raise root.doc.error(path, "the policy has no rules", no_rules)
    rules: list[Rule] = []
    for family in rules_table.data:
        builder, keys = FAMILIES[family]
        table = rules_table.subtable(
            family, f"Write [rules.{family}] as a table.", (*_COMMON, *keys)
        )
        assert table is not None
        rules.append(builder(table, table.choice("mode", RuleMode, RuleMode.ENFORCE)))
    return tuple(rules)


def _syntax_error(exc: tomllib.TOMLDecodeError, source: str) -> PolicySyntaxError:
    message = str(exc)
    found = _TOML_POSITION.search(message)
    line = int(found.group(1)) if found else None
    problem = _TOML_POSITION.sub("", message)
    if found:
        problem += f" at column {found.group(2)}"
    return PolicySyntaxError(
        f"not valid TOML: {problem}",
        source=source,
        line=line,
        fix="Fix the TOML syntax there (strings need quotes, arrays commas).",
    )


def parse_policy(text: str, *, source: str) -> Policy:
    """Parse and validate policy TOML; ``source`` names the file in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(exc, source) from None
    sections = ("policy", "token", "rules")
    root = TomlTable(TomlDocument(text, source), (), data, sections, noun=("section", "sections"))
    fix = 'Add [policy] with version = "2026-11-01" (any id: letters, digits, . _ : + -).'
    policy = root.subtable("policy", fix, ("version", "description"))
    if policy is None:
        raise root.doc.error(("policy",), "missing table", fix)
    version_fix = 'Write version = "2026-11-01": 1 to 64 letters, digits or . _ : + -.'
    version = policy.text("version", None, _VERSION, version_fix)
    policy.text("description", "", re.compile(r".{0,1000}", re.DOTALL), "Shorten it.")
    return Policy(version=version, rules=_rules(root), token=_token(root))


def load_policy(path: Path) -> Policy:
    """Read and validate the policy file at ``path``; raises a PolicyError naming the line."""
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(
            f"cannot read the policy file ({exc.strerror or exc})",
            source=source,
            fix="Check the path and its permissions.",
        ) from None
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError(
            "the policy file is larger than 1 MiB", source=source, fix="Is this the right file?"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicySyntaxError(
            "the policy file is not UTF-8", source=source, fix="Save it as UTF-8."
        ) from None
    return parse_policy(text, source=source)


__all__ = ["FAMILIES", "MAX_POLICY_BYTES", "load_policy", "parse_policy"]
