"""Continue: ``apiBase`` of the models in ``~/.continue/config.yaml`` or legacy ``config.json``."""

from __future__ import annotations

from pathlib import Path

from agent.collectors import CollectionContext
from agent.collectors.codingtools import loaded_or_error, url_finding
from agent.collectors.configfiles import ErrorCode, load_json, load_yaml
from agent.collectors.findings import Findings, failed
from agent.collectors.providers import provider_for_tool_id
from agent.collectors.urlreaders import Reader
from attest.catalog.values import BaseUrl

_READERS = (Reader.WHATWG,)  # WHATWG URL parsing (Node.js; Rust url crate)

_SOURCE = "continue:user"
# Model lists and the single-model roles of the JSON format that take an apiBase.
_MODEL_KEYS = ("models", "tabAutocompleteModel", "embeddingsProvider", "reranker")


def _models(data: dict[str, object]) -> list[dict[str, object]]:
    models: list[dict[str, object]] = []
    for key in _MODEL_KEYS:
        value = data.get(key)
        entries = value if isinstance(value, list) else [value]
        models.extend(m for m in entries if isinstance(m, dict))
    return models


def _from_config(data: object, problem: Findings[BaseUrl]) -> Findings[BaseUrl]:
    if data is None:
        return problem
    if not isinstance(data, dict):
        return failed(_SOURCE, ErrorCode.UNEXPECTED_SHAPE)
    return Findings.merge(
        url_finding(
            _SOURCE,
            provider_for_tool_id(model.get("provider")),
            model.get("apiBase"),
            _READERS,
        )
        for model in _models(data)
    )


def find(ctx: CollectionContext) -> Findings[BaseUrl]:
    """Both formats, if both exist: Continue reads the YAML one but the JSON one may linger."""
    global_dir = ctx.env.get("CONTINUE_GLOBAL_DIR") or ""
    base = Path(global_dir) if global_dir else ctx.home / ".continue"
    yaml_config = _from_config(*loaded_or_error(_SOURCE, load_yaml(base / "config.yaml")))
    # Continue's config.json tolerates comments.
    json_loaded = load_json(base / "config.json", comments=True)
    json_config = _from_config(*loaded_or_error(_SOURCE, json_loaded))
    return yaml_config + json_config
