"""The OpenAPI document is part of the contract: the checked-in copy is current, and a live
server conforms to it (schemathesis: no 5xx, statuses, content types and bodies as declared)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from server.openapi import openapi_document, render_openapi
from tests.servers import REPO, clean_env, init_verifier

CHECKED_IN = REPO / "docs" / "openapi.json"


def test_checked_in_openapi_is_current() -> None:
    assert CHECKED_IN.read_text() == render_openapi(openapi_document()), (
        "docs/openapi.json is stale: run 'envattest-server openapi --output docs/openapi.json'"
    )


def test_every_operation_declares_its_problem_answers() -> None:
    spec = openapi_document()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status in ("400", "413", "429", "503"):
                content = operation["responses"][status]["content"]
                assert "application/problem+json" in content, (method, path, status)
            assert "422" not in operation["responses"]


@pytest.mark.slow
def test_a_live_server_conforms_to_its_openapi(tmp_path: Path) -> None:
    st = shutil.which("st", path=str(REPO / ".venv" / "bin")) or shutil.which("st")
    if st is None:
        pytest.skip("schemathesis not installed: pip install -e '.[dev]'")
    server = init_verifier(tmp_path / "v")
    with (server.data_dir / "server.toml").open("a") as toml:
        toml.write("rate_limit_per_minute = 0\ndevice_rate_limit_per_minute = 0\n")
    server.start()
    try:
        done = subprocess.run(
            [st, "run", f"{server.url}/openapi.json",
             "--checks", "not_a_server_error,status_code_conformance,"
             "content_type_conformance,response_schema_conformance,response_headers_conformance",
             "--max-examples", "40", "--phases", "examples,coverage,fuzzing",
             "--request-timeout", "10", "--no-color", "--seed", "1"],
            capture_output=True, text=True, timeout=240, check=False, cwd=tmp_path,
            env=clean_env(SCHEMATHESIS_HOOKS="tests.server.schemathesis_hooks"),
        )  # fmt: skip
    finally:
        server.stop()
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
