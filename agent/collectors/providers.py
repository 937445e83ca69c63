"""Provider data in one place: base-URL variables, official API hosts, tool provider ids.

Classification is a host match against the *named* provider's own hosts: an Anthropic client
pointed at an aggregator is not "official" even when the aggregator's own API is listed here.
A ``*`` in a host pattern stands for one label or part of a label, never for a dot, so
``*.openai.azure.com`` cannot be satisfied by ``openai.azure.com.relay.example``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

OTHER = "other"
"""Provider id for a tool-configured provider we do not know; never classified official."""

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

_OFFICIAL_HOST_PATTERNS: Mapping[str, tuple[str, ...]] = MappingProxyType(
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


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(re.escape(pattern).replace(r"\*", "[a-z0-9-]+"))


_OFFICIAL: Mapping[str, tuple[re.Pattern[str], ...]] = MappingProxyType(
    {name: tuple(_compile(p) for p in pats) for name, pats in _OFFICIAL_HOST_PATTERNS.items()}
)

PROVIDERS: frozenset[str] = frozenset(_OFFICIAL)
"""Every provider id the agent reports."""

_TOOL_PROVIDER_IDS: Mapping[str, str] = MappingProxyType(
    {
        "anthropic": "anthropic",
        "claude": "anthropic",
        "openai": "openai",
        "azure": "azure-openai",
        "azure-openai": "azure-openai",
        "azure_openai": "azure-openai",
        "azureopenai": "azure-openai",
        "azure-foundry": "azure-foundry",
        "gemini": "google-gemini",
        "google": "google-gemini",
        "google-gemini": "google-gemini",
        "vertex": "google-vertex",
        "vertexai": "google-vertex",
        "vertex_ai": "google-vertex",
        "google-vertex": "google-vertex",
        "google-vertex-anthropic": "google-vertex",
        "bedrock": "aws-bedrock",
        "amazon-bedrock": "aws-bedrock",
        "aws-bedrock": "aws-bedrock",
        "ollama": "ollama",
        "openrouter": "openrouter",
        "mistral": "mistral",
        "deepseek": "deepseek",
        "groq": "groq",
        "xai": "xai",
    }
)


def provider_for_tool_id(tool_id: object) -> str:
    """The provider behind a coding tool's own provider id; ``other`` when unknown.

    Tool ids are user-chosen strings, so they are mapped, never passed through.
    """
    if not isinstance(tool_id, str):
        return OTHER
    return _TOOL_PROVIDER_IDS.get(tool_id.strip().lower(), OTHER)


def is_official_host(provider: str, host: str) -> bool:
    """Whether ``host`` (normalized: lower case, IDNA, no trailing dot) is ``provider``'s own."""
    return any(p.fullmatch(host) for p in _OFFICIAL.get(provider, ()))
