"""Fixtures for collector tests: recorded machines, and contexts that forbid every source.

No test reads the developer's home, environment or registry: every CollectionContext is
built here, over a recording under ``tests/fixtures/collectors`` or over ``tmp_path``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from agent.collectors import CollectionContext
from agent.collectors.recorded import RECORDED_AT, RecordedCommands, load_recording

from .support import FIXTURES

Recording = Callable[..., tuple[CollectionContext, RecordedCommands]]


@pytest.fixture
def recording() -> Recording:
    """``recording("linux")`` -> (context, runner) replaying that recorded machine."""

    def load(name: str, **overrides: object) -> tuple[CollectionContext, RecordedCommands]:
        ctx, runner = load_recording(FIXTURES / name)
        return replace(ctx, **overrides), runner  # type: ignore[arg-type]

    return load


def _forbidden_run(argv: Sequence[str]) -> str | None:
    pytest.fail(f"command run although no field needs it: {list(argv)}")


def _forbidden_registry(hive: str, key: str, name: str) -> object | None:
    pytest.fail(f"registry read although no field needs it: {hive}\\{key}\\{name}")


def _forbidden_interfaces() -> list[str]:
    pytest.fail("interfaces listed although no field needs them")


@pytest.fixture
def empty_context(tmp_path: Path) -> CollectionContext:
    """A machine with empty trees, no environment, and every command/registry/interface
    access failing the test: a base for cases that set just what they need."""
    for part in ("home", "project", "system"):
        (tmp_path / part).mkdir()
    return CollectionContext(
        env={},
        home=tmp_path / "home",
        project_dir=tmp_path / "project",
        system_root=tmp_path / "system",
        platform="linux",
        run=_forbidden_run,
        registry=_forbidden_registry,
        interfaces=_forbidden_interfaces,
        clock=lambda: RECORDED_AT,
        local_offset=lambda _now: pytest.fail("local offset asked although a zone is known"),
    )


@pytest.fixture
def forbidden_run() -> Callable[[Sequence[str]], str | None]:
    """A runner that fails the test when called."""
    return _forbidden_run


@pytest.fixture
def forbidden_registry() -> Callable[[str, str, str], object | None]:
    """A registry reader that fails the test when called."""
    return _forbidden_registry


@pytest.fixture
def forbidden_interfaces() -> Callable[[], list[str]]:
    """An interface lister that fails the test when called."""
    return _forbidden_interfaces
