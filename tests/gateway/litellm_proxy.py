"""The real LiteLLM proxy (``litellm[proxy]`` from PyPI) with envattest's custom auth.

LiteLLM pins many packages, so it lives in its own virtual environment, outside the
project's: ``.ci/run`` creates it at ``~/.cache/envattest-ci/litellm`` (``ENVATTEST_LITELLM_VENV``
overrides). The proxy loads ``envattest_gateway`` from this checkout through PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests._support import free_port, missing_component
from tests.gateway.docconfig import for_this_machine, tested_block
from tests.gateway.process import running_program
from tests.servers import REPO

LITELLM_VERSION = "1.108.7"  # the one .ci/run installs

# A LiteLLM callback (loaded from the config's directory) that writes down, for each request
# that reached a model, the LiteLLM key and user the custom auth produced.
RECORDER = """
import json
from litellm.integrations.custom_logger import CustomLogger

class Recorder(CustomLogger):
    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        meta = kwargs.get("litellm_params", {}).get("metadata", {}) or {}
        with open(OUT, "a") as out:
            out.write(json.dumps({
                "user_id": meta.get("user_api_key_user_id"),
                "key_alias": meta.get("user_api_key_alias"),
                "key_metadata": meta.get("user_api_key_metadata"),
            }, default=str) + "\\n")

handler = Recorder()
"""


def litellm_venv() -> Path:
    """The virtual environment with LiteLLM, or skip/fail with how to make it."""
    override = os.environ.get("ENVATTEST_LITELLM_VENV")
    venv = Path(override) if override else Path.home() / ".cache" / "envattest-ci" / "litellm"
    if not (venv / "bin" / "litellm").exists():
        missing_component(
            f"LiteLLM not found in {venv}; run: python3 -m venv {venv} && "
            f"{venv}/bin/pip install 'litellm[proxy]=={LITELLM_VERSION}'"
        )
    return venv


def litellm_version(venv: Path) -> str:
    """The installed LiteLLM version (for reports)."""
    probe = "import importlib.metadata as m; print(m.version('litellm'))"
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@contextmanager
def running_litellm(
    run_dir: Path,
    *,
    verifier_url: str,
    credential: str,
    upstream_url: str,
    issuer: str,
    users: dict[str, str],
    cache_s: float,
) -> Iterator[tuple[str, Path]]:
    """LiteLLM's proxy on a free loopback port; yields its URL and the recorder's file."""
    venv = litellm_venv()
    run_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    record = run_dir / "requests.jsonl"
    (run_dir / "recorder.py").write_text(f"OUT = {str(record)!r}\n" + RECORDER)
    config = for_this_machine(
        tested_block("litellm"),
        {
            "https://llm-backend.internal/v1": f"{upstream_url}/v1",
            "os.environ/UPSTREAM_API_KEY": "stub-upstream-key",
        },
    )
    (run_dir / "config.yaml").write_text(
        config + "\nlitellm_settings:\n  callbacks: recorder.handler\n"
    )
    (run_dir / "users.json").write_text(json.dumps(users))
    url = f"http://127.0.0.1:{port}"
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(run_dir),
        "PYTHONPATH": str(REPO),
        "ENVATTEST_VERIFIER_URL": verifier_url,
        "ENVATTEST_GATEWAY_CREDENTIAL": credential,
        "ENVATTEST_ISSUER": issuer,
        "ENVATTEST_AUDIENCE": "envattest",
        "ENVATTEST_USERS": str(run_dir / "users.json"),
        "ENVATTEST_CACHE_S": str(cache_s),
        "ENVATTEST_EXTERNAL_URL": url,
        "LITELLM_MASTER_KEY": "sk-" + secrets.token_hex(32),
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "NO_PROXY": "*",
    }
    argv = [
        str(venv / "bin" / "litellm"), "--config", str(run_dir / "config.yaml"),
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    with running_program(
        argv, url=f"{url}/health/liveliness", log=run_dir / "litellm.log", env=env, wait_s=120
    ):
        yield url, record
