"""Host classification: official, localhost, private-network or custom.

The verifier decides a base URL's classification itself, from the policy's provider hosts
(``[rules.base_url.official_hosts]``, which replace the shipped defaults below provider by
provider); the agent uses the same function with the defaults only to show the user what it
found. A host is official only for the provider the URL was configured for: an Anthropic
client pointed at an aggregator is not "official" even when the aggregator is listed.

Provider host patterns: ``*`` stands for one label or part of one label, never for a dot, so
``*.openai.azure.com`` cannot be satisfied by ``openai.azure.com.relay.example``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

OTHER = "other"
"""Provider id for a tool-configured provider we do not know; never classified official."""

DEFAULT_OFFICIAL_HOSTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "anthropic": ("api.anthropic.com",),
        "openai": ("api.openai.com", "chatgpt.com"),
        "azure-openai": (
            "*.openai.azure.com",
            "*.cognitiveservices.azure.com",
            "*.openai.azure.us",
            "*.services.ai.azure.com",
        ),
        "azure-foundry": ("*.services.ai.azure.com",),
        "aws-bedrock": (
            "bedrock-runtime.*.amazonaws.com",
            "bedrock-runtime-fips.*.amazonaws.com",
            "bedrock.*.amazonaws.com",
            "bedrock-runtime.*.amazonaws.com.cn",
            "*.bedrock-runtime.*.vpce.amazonaws.com",
        ),
        "google-vertex": ("aiplatform.googleapis.com", "*-aiplatform.googleapis.com"),
        "google-gemini": ("generativelanguage.googleapis.com",),
        "openrouter": ("openrouter.ai",),
        "mistral": ("api.mistral.ai", "codestral.mistral.ai"),
        "deepseek": ("api.deepseek.com",),
        "groq": ("api.groq.com",),
        "xai": ("api.x.ai",),
        "ollama": (),
        OTHER: (),
    }
)
"""Each provider's own API hosts: shipped, neutral defaults that a policy may replace."""

PROVIDERS: frozenset[str] = frozenset(DEFAULT_OFFICIAL_HOSTS)
"""Every provider id the agent reports and the verifier accepts."""

BASE_URL_ENV: Mapping[str, str] = MappingProxyType(
    {
        # Claude Code and the Anthropic SDKs.
        "ANTHROPIC_BASE_URL": "anthropic",
        "ANTHROPIC_BEDROCK_BASE_URL": "aws-bedrock",
        "ANTHROPIC_VERTEX_BASE_URL": "google-vertex",
        "ANTHROPIC_FOUNDRY_BASE_URL": "azure-foundry",
        # LiteLLM (and so Aider) spelling.
        "ANTHROPIC_API_BASE": "anthropic",
        # OpenAI SDKs (current and pre-1.0), Codex, Aider.
        "OPENAI_BASE_URL": "openai",
        "OPENAI_API_BASE": "openai",
        "AIDER_OPENAI_API_BASE": "openai",
        "AZURE_OPENAI_ENDPOINT": "azure-openai",
        "AZURE_API_BASE": "azure-openai",
        # google-genai SDK and Gemini CLI; LiteLLM spelling.
        "GOOGLE_GEMINI_BASE_URL": "google-gemini",
        "GEMINI_API_BASE": "google-gemini",
        "GOOGLE_VERTEX_BASE_URL": "google-vertex",
        "VERTEXAI_API_BASE": "google-vertex",
        # AWS SDK service-specific endpoint overrides (the generic AWS_ENDPOINT_URL is left out:
        # it is usually a local S3 emulator, not a model endpoint).
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "aws-bedrock",
        "AWS_ENDPOINT_URL_BEDROCK": "aws-bedrock",
        # Local model servers that Aider and others read.
        "OLLAMA_API_BASE": "ollama",
    }
)
"""Environment variables that hold an API base URL, each mapped to the provider it serves."""


def provider_of(source: str, reported: str) -> str:
    """The provider a base URL serves: derived from the variable for an ``env:`` source (an
    unknown variable serves no known provider), else the reported one (a tool's setting)."""
    if source.startswith("env:"):
        return BASE_URL_ENV.get(source.removeprefix("env:"), OTHER)
    return reported


HostClass = Literal["official", "localhost", "private-network", "custom"]

_LABEL = r"(?:[a-z0-9-]+|[a-z0-9-]*\*[a-z0-9-]*)"
_PATTERN = re.compile(rf"(?:{_LABEL}\.)+[a-z0-9-]+")
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",  # carrier-grade NAT; also where tailnets live
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
    )
)


def _compile(pattern: str) -> re.Pattern[str]:
    """A provider host pattern as a regex; ValueError says what to write instead."""
    text = pattern.strip().lower()
    if len(text) > 253 or not _PATTERN.fullmatch(text) or text.count("*") > 2:
        raise ValueError(
            f"{pattern!r} is not a provider host pattern; write 'api.example.com' or "
            "'*.example.com' ('*' stands for part of one label, at most twice)"
        )
    return re.compile(re.escape(text).replace(r"\*", "[a-z0-9-]+"))


@dataclass(frozen=True)
class OfficialHosts:
    """Compiled provider host patterns. Build with ``official_hosts``."""

    patterns: Mapping[str, tuple[str, ...]]
    _compiled: Mapping[str, tuple[re.Pattern[str], ...]]

    def is_official(self, provider: str, host: str) -> bool:
        """Whether normalized ``host`` is one of ``provider``'s own hosts."""
        return any(p.fullmatch(host) for p in self._compiled.get(provider, ()))


def official_hosts(overrides: Mapping[str, tuple[str, ...]] | None = None) -> OfficialHosts:
    """The defaults with ``overrides`` replacing whole providers; ValueError on a bad entry."""
    merged = dict(DEFAULT_OFFICIAL_HOSTS)
    for provider, patterns in (overrides or {}).items():
        if provider not in PROVIDERS or provider == OTHER:
            known = ", ".join(sorted(PROVIDERS - {OTHER}))
            raise ValueError(f"{provider!r} is not a provider id; use one of {known}")
        merged[provider] = tuple(patterns)
    compiled = {name: tuple(_compile(p) for p in pats) for name, pats in merged.items()}
    return OfficialHosts(MappingProxyType(merged), MappingProxyType(compiled))


DEFAULTS = official_hosts()


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a normalized host names, if it is an IP literal (v4-mapped v6 as v4)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def classify(provider: str, host: str, official: OfficialHosts = DEFAULTS) -> HostClass:
    """official, localhost, private-network or custom, for a normalized host.

    Only IP literals are called private: a name's address is whatever DNS or a hosts file
    says, which the user controls, so ``relay.internal`` is custom. ``localhost`` is the one
    name clients resolve to loopback themselves (RFC 6761).
    """
    address = ip_literal(host)
    if address is not None:
        if address.is_loopback or address.is_unspecified:
            return "localhost"
        if any(address in net for net in _PRIVATE_NETWORKS):
            return "private-network"
        return "custom"
    if host == "localhost" or host.endswith(".localhost"):
        return "localhost"
    return "official" if official.is_official(provider, host) else "custom"


__all__ = [
    "BASE_URL_ENV",
    "DEFAULTS",
    "DEFAULT_OFFICIAL_HOSTS",
    "OTHER",
    "PROVIDERS",
    "HostClass",
    "OfficialHosts",
    "classify",
    "ip_literal",
    "official_hosts",
    "provider_of",
]
