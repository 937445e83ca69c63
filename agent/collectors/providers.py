"""Where the agent looks for providers: base-URL variables and coding tools' provider ids.

The provider ids themselves, and each provider's official hosts, are catalog data shared
with the verifier (``attest.catalog.hosts``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from attest.catalog.hosts import OTHER, PROVIDERS

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


__all__ = ["BASE_URL_ENV", "OTHER", "PROVIDERS", "provider_for_tool_id"]
