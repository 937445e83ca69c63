"""Where the agent looks for providers: base-URL variables and coding tools' provider ids.

The provider ids, the base-URL variables and each provider's official hosts are catalog data
shared with the verifier (``attest.catalog.hosts``), which derives an ``env:`` source's
provider from the variable's name itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from attest.catalog.hosts import BASE_URL_ENV, OTHER, PROVIDERS

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
