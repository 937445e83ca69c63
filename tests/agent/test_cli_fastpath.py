"""``envattest token`` with a valid cached token imports only the standard library."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import attest
from tests.conftest import AgentCli
from tests.servers import REPO, clean_env

# Modules the cached path must never import: each costs tens of milliseconds per request.
HEAVY = ("cryptography", "psutil", "httpx", "httpcore", "truststore", "pydantic", "yaml",
         "tzlocal", "platformdirs", "agent.client", "agent.home", "agent.collectors")  # fmt: skip

PROBE = """
import json, sys
from agent._cli import main
code = main(sys.argv[1:])
sys.stdout.flush()
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _cache_token(home: Path, token: str, *, valid_for: int) -> None:
    home.mkdir(parents=True, exist_ok=True)
    doc = {"access_token": token, "expires_at": int(time.time()) + valid_for}
    home.joinpath("token.json").write_text(json.dumps(doc))


def _run_probe(home: Path, *args: str) -> tuple[str, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "--home", str(home), *args],
        capture_output=True, text=True, env=clean_env(HOME=str(home.parent)), cwd=REPO,
        check=True, timeout=60,
    )  # fmt: skip
    return done.stdout, json.loads(done.stderr.strip().splitlines()[-1])


def test_cached_token_path_imports_nothing_heavy(tmp_path: Path) -> None:
    home = tmp_path / "state"
    _cache_token(home, "cached.jwt.value", valid_for=600)
    stdout, probe = _run_probe(home, "token")
    assert stdout == "cached.jwt.value\n"
    assert probe["code"] == 0
    modules = set(probe["modules"])  # type: ignore[call-overload]
    loaded_heavy = sorted(m for m in modules if m.startswith(HEAVY))
    assert loaded_heavy == []
    # ``attest`` itself (the version) is fine; its submodules pull in cryptography
    assert sorted(m for m in modules if m.startswith("attest.")) == []


def test_the_probe_would_see_heavy_imports(tmp_path: Path) -> None:
    """Guard against a probe that cannot fail: an expired token takes the full path."""
    home = tmp_path / "state"
    _cache_token(home, "expired.jwt.value", valid_for=-10)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "--home", str(home), "token"],
        capture_output=True, text=True, env=clean_env(HOME=str(tmp_path)), cwd=REPO,
        check=False, timeout=60,
    )  # fmt: skip
    assert "envattest init" in done.stderr  # not enrolled: it went past the cache
    modules = set(json.loads(done.stderr.strip().splitlines()[-1])["modules"])
    assert "agent.home" in modules


def test_cached_token_is_printed_alone(agent_cli: AgentCli) -> None:
    _cache_token(agent_cli.home, "a.b.c", valid_for=600)
    run = agent_cli("token")
    assert (run.code, run.stdout, run.stderr) == (0, "a.b.c\n", "")


def test_token_about_to_expire_is_not_served(agent_cli: AgentCli) -> None:
    _cache_token(agent_cli.home, "a.b.c", valid_for=30)
    run = agent_cli("token")
    assert run.code == 1
    assert "a.b.c" not in run.stdout


def test_version_is_the_one_from_attest_and_pyproject(agent_cli: AgentCli) -> None:
    declared = tomllib.loads(REPO.joinpath("pyproject.toml").read_text())["project"]["version"]
    assert attest.__version__ == declared
    run = agent_cli("--version")
    assert run.stdout.strip() == f"envattest {declared}"
