"""Base-URL family: which API endpoints coding tools are pointed at (relays hide here)."""

from __future__ import annotations

from attest.catalog import Family, Field, FieldId, Sensitivity
from attest.catalog.values import BaseUrl, SourceError

_NEVER = "API keys, paths, query strings, file contents"
_SHAPE = "list of {source, provider, scheme, host, port, classification}"

FIELDS = (
    Field(
        id=FieldId("baseurl.env"),
        family=Family.BASEURL,
        value_type=list[BaseUrl],
        type_name=_SHAPE,
        description="API base-URL environment variables (ANTHROPIC_BASE_URL, "
        "OPENAI_BASE_URL, OPENAI_API_BASE, AZURE_OPENAI_ENDPOINT, GOOGLE_GEMINI_BASE_URL, "
        "Bedrock, Vertex and Foundry ones). classification: official (the provider's own API "
        "host), localhost, private-network (IP literals only) or custom.",
        sensitivity=Sensitivity.MEDIUM,
        example=[
            {
                "source": "env:ANTHROPIC_BASE_URL",
                "provider": "anthropic",
                "scheme": "https",
                "host": "api.anthropic.com",
                "port": None,
                "classification": "official",
            }
        ],
        never=_NEVER,
    ),
    Field(
        id=FieldId("baseurl.tools"),
        family=Family.BASEURL,
        value_type=list[BaseUrl],
        type_name=_SHAPE,
        description="Base URLs in coding-tool configuration: Claude Code settings env "
        "blocks, Codex, Aider, Continue, Gemini CLI, opencode; source is tool:scope.",
        sensitivity=Sensitivity.MEDIUM,
        example=[
            {
                "source": "claude-code:user",
                "provider": "anthropic",
                "scheme": "https",
                "host": "relay.example.net",
                "port": 8443,
                "classification": "custom",
            }
        ],
        never=_NEVER,
    ),
    Field(
        id=FieldId("baseurl.errors"),
        family=Family.BASEURL,
        value_type=list[SourceError],
        type_name="list of {source, error}",
        description="Coding-tool configuration files that could not be read, with an error code.",
        sensitivity=Sensitivity.LOW,
        example=[{"source": "codex:user", "error": "invalid-toml"}],
        never="file contents",
    ),
)
