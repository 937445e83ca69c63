"""Test support shared by every test package: finding real components.

A test that needs a real component (swtpm, PostgreSQL, nginx) calls ``need_tool``: locally it
skips with a reason that says how to get the component; under ``CI=true`` it fails instead,
because CI installs everything and a skip there would hide a broken install step.
"""

from __future__ import annotations

import os
import shutil
import socket

import pytest


def in_ci() -> bool:
    """True under CI, where a missing component is a failure, not a skip."""
    return os.environ.get("CI", "").lower() == "true"


def missing_component(reason: str) -> None:
    """Skip locally, fail under CI."""
    if in_ci():
        pytest.fail(f"required component missing under CI: {reason}")
    pytest.skip(reason)


def need_tool(name: str, how: str) -> str:
    """Path of executable ``name`` or skip/fail with ``how`` to install it."""
    path = shutil.which(name) or next(
        (
            os.path.join(d, name)
            for d in ("/usr/sbin", "/usr/lib/postgresql/15/bin", "/usr/local/sbin")
            if os.access(os.path.join(d, name), os.X_OK)
        ),
        None,
    )
    if path is None:
        missing_component(f"{name} not found; {how}")
        raise AssertionError("unreachable")
    return path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
