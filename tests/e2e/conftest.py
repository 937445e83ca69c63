"""Fixtures of the end-to-end proxy tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.proxy_support import Gateway, api_behind_dpop_gateway
from tests.stubs.llm_api import StubLlmApi


@pytest.fixture
def api_behind_nginx(tmp_path: Path) -> Iterator[tuple[Gateway, StubLlmApi]]:
    """The stub LLM API behind nginx and a DPoP verifier."""
    with api_behind_dpop_gateway(tmp_path) as running:
        yield running
