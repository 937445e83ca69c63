"""Base-URL family: which API endpoints coding tools are pointed at (relays hide here)."""

from __future__ import annotations

from attest.catalog import Family, Field, FieldId, Sensitivity
from attest.catalog.values import BaseUrl, BaseUrlSourceError, bounded_list

_NEVER = "API keys, paths, query strings, file contents"
_SHAPE = "list of {source, provider, scheme, host, port, classification}"

FIELDS = (
    Field(
        id=FieldId("baseurl.env"),
        family=Family.BASEURL,
        value_type=bounded_list(BaseUrl),
        type_name=_SHAPE,
        description="API base-URL environment variables (ANTHROPIC_BASE_URL, "
        "OPENAI_BASE_URL, OPENAI_API_BASE, AZURE_OPENAI_ENDPOINT, GOOGLE_GEMINI_BASE_URL, "
        "Bedrock, Vertex and Foundry ones). host is where the clients reading the variable "
        "would connect (WHATWG URL parsing for Node.js tools, httpx for Python ones; both "
        "hosts when they differ). classification (official, localhost, private-network, "
        "custom) is shown to the user; the verifier derives its own from the policy.",
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
        value_type=bounded_list(BaseUrl),
        type_name=_SHAPE,
        description="Base URLs in coding-tool configuration: Claude Code settings env "
        "blocks, Codex, Aider, Continue, Gemini CLI, opencode; source is tool:scope. Each URL "
        "is parsed the way its tool parses it.",
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
        value_type=bounded_list(BaseUrlSourceError),
        type_name="list of {field, source, error}",
        description="Base-URL sources that could not be read or parsed (a file, or a URL no "
        "client could use), with the field they feed and an error code. The base-URL rule "
        "fails closed on them.",
        sensitivity=Sensitivity.LOW,
        example=[{"field": "baseurl.tools", "source": "codex:user", "error": "invalid-toml"}],
        never="file contents",
    ),
)
