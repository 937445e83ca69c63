"""The OpenAPI document is part of the contract: the checked-in copy is current, and a live
server conforms to it (schemathesis: no 5xx, statuses, content types and bodies as declared)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from server.openapi import openapi_document, render_openapi
from tests.devices import TestDevice
from tests.servers import REPO, clean_env, init_verifier, run_server_cli

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


# every operation whose success path the hooks make reachable, with its success status
SUCCESS_PATHS = {
    ("POST", "/v1/challenge"): "200",
    ("POST", "/v1/attest"): "200",
    ("POST", "/v1/device/whoami"): "200",
    ("POST", "/v1/device/forget"): "200",
    ("GET", "/v1/authz"): "204",
    ("POST", "/v1/introspect"): "200",
    ("POST", "/v1/enroll"): "200",
    ("POST", "/v1/enroll/challenge"): "200",
}


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
        # what the hooks need to make valid requests (tests/server/schemathesis_hooks.py)
        device = TestDevice.enroll(server.url, server.enroll_token(), tmp_path / "device.pem")
        tokens = tmp_path / "enrollment-tokens"
        pool = [server.enroll_token(uses=4) for _ in range(16)]
        tokens.write_text("\n".join(token for token in pool for _ in range(4)))
        gateway = run_server_cli(
            ["gateway-credential", "create", "--data-dir", str(server.data_dir)]
        ).strip()
        (tmp_path / "keys").mkdir()
        done = subprocess.run(
            [st, "run", f"{server.url}/openapi.json",
             "--checks", "not_a_server_error,status_code_conformance,"
             "content_type_conformance,response_schema_conformance,response_headers_conformance",
             "--max-examples", "40", "--phases", "examples,coverage,fuzzing",
             "--request-timeout", "10", "--no-color", "--seed", "1"],
            capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
            env=clean_env(
                SCHEMATHESIS_HOOKS="tests.server.schemathesis_hooks",
                ENVATTEST_ST_URL=server.url, ENVATTEST_ST_DEVICE=device.device_id,
                ENVATTEST_ST_KEY=str(tmp_path / "device.pem"), ENVATTEST_ST_GATEWAY=gateway,
                ENVATTEST_ST_TOKENS=str(tokens), ENVATTEST_ST_KEYS=str(tmp_path / "keys"),
            ),
        )  # fmt: skip
        metrics = httpx.get(f"{server.url}/metrics").text
    finally:
        server.stop()
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    answered = {
        (m["method"], m["route"], m["status"]): float(m["n"])
        for m in re.finditer(
            r'envattest_http_requests_total\{method="(?P<method>\w+)",route="(?P<route>[^"]+)",'
            r'status="(?P<status>\d+)"\} (?P<n>[\d.]+)',
            metrics,
        )
    }
    for (method, route), status in SUCCESS_PATHS.items():
        assert answered.get((method, route, status), 0) > 0, (method, route, sorted(answered))
    print(done.stdout[-1200:])
    print({f"{m} {r} {s}": int(n) for (m, r, s), n in sorted(answered.items())})
