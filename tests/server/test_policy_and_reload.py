"""Policy wiring: ``policy check`` / ``policy explain``, the default policy ``init`` writes,
SIGHUP reload (an invalid new policy keeps the old one), a bad policy stopping ``serve``,
and key rotation picked up by a running server without restart."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from server.datadir import DEFAULT_POLICY_TOML
from server.policy import parse_policy
from server.policy.defaults import default_policy
from tests.devices import TestDevice
from tests.server.support import access_token, enrolled_device, server_cli, token_claims
from tests.servers import REPO, VerifierProcess, run_server_cli

EXAMPLES = REPO / "server" / "examples"
BROKEN = '[policy]\nversion = "v2"\n\n[rules.clock_skew]\nmode = "enforce"\nmax_skew_s = "soon"\n'


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_init_writes_a_policy_equal_to_the_builtin_default() -> None:
    assert parse_policy(DEFAULT_POLICY_TOML, source="default") == default_policy()


def test_policy_check_accepts_examples_and_names_key_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = server_cli(
        capsys, "policy", "check", str(EXAMPLES / "policy-permissive-report-only.toml")
    )
    assert run.code == 0
    assert "valid" in run.out
    assert "warning: no rule enforces" in run.out
    bad = tmp_path / "bad.toml"
    bad.write_text(BROKEN)
    run = server_cli(capsys, "policy", "check", str(bad))
    assert run.code == 2
    assert "line 6" in run.err
    assert "max_skew_s" in run.err


def test_policy_explain_renders_every_rule(
    shared_verifier: VerifierProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device = enrolled_device(shared_verifier, tmp_path / "key.pem")
    evidence = tmp_path / "evidence.jws"
    evidence.write_text(device.evidence())
    d = str(shared_verifier.data_dir)
    run = server_cli(capsys, "policy", "explain", str(evidence), "--data-dir", d)
    assert run.code == 0, run.err
    assert "ALLOW" in run.out
    assert "key_class" in run.out
    assert "offline" in run.out
    strict = str(EXAMPLES / "policy-strict-hardware.toml")
    run = server_cli(capsys, "policy", "explain", str(evidence), "--policy", strict)
    assert run.code == 1
    assert "DENY" in run.out
    assert "FAIL" in run.out
    run = server_cli(
        capsys, "policy", "explain", str(evidence), "--policy", strict, "--key-class", "tpm2"
    )
    assert "key class tpm2 was given" in run.out


def test_serve_stops_on_an_invalid_policy_naming_key_and_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.servers import clean_env, init_verifier

    server = init_verifier(tmp_path / "v")
    (server.data_dir / "policy.toml").write_text(BROKEN)
    done = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--data-dir", str(server.data_dir),
         "--port", str(server.port)],
        capture_output=True, text=True, env=clean_env(), cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "line 6" in done.stderr
    assert "max_skew_s" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture
def running(verifier: VerifierProcess, tmp_path: Path) -> tuple[VerifierProcess, TestDevice]:
    return verifier, enrolled_device(verifier, tmp_path / "key.pem")


def _audit_events(server: VerifierProcess) -> list[dict[str, object]]:
    out = run_server_cli(["audit", "list", "--data-dir", str(server.data_dir), "--json"])
    return [r for r in json.loads(out) if r["event"] == "admin.reload"]


def test_sighup_reloads_policy_and_keeps_the_old_one_when_invalid(
    running: tuple[VerifierProcess, TestDevice],
) -> None:
    server, device = running
    assert server.process is not None
    policy = server.data_dir / "policy.toml"
    policy.write_text(DEFAULT_POLICY_TOML.replace('"default-1"', '"v2"'))
    server.process.send_signal(signal.SIGHUP)
    _wait_for(lambda: len(_audit_events(server)) == 1, "the reload audit record")
    assert token_claims(access_token(device))["policy_version"] == "v2"

    policy.write_text(BROKEN)
    server.process.send_signal(signal.SIGHUP)
    _wait_for(lambda: len(_audit_events(server)) == 2, "the failed reload audit record")
    failed = _audit_events(server)[-1]["data"]
    assert isinstance(failed, dict)
    assert failed["ok"] is False
    assert "line 6" in failed["error"]
    # the previous policy stays in force and the server keeps answering
    assert token_claims(access_token(device))["policy_version"] == "v2"
    assert "line 6" in server.log_path.read_text()


def test_key_rotation_is_picked_up_without_restart(
    running: tuple[VerifierProcess, TestDevice], capsys: pytest.CaptureFixture[str]
) -> None:
    server, device = running
    old_token = access_token(device)
    old_kid = json.loads((server.data_dir / "keys" / "keys.json").read_text())[0]["kid"]
    run = server_cli(capsys, "keys", "rotate", "--data-dir", str(server.data_dir))
    assert run.code == 0, run.err
    entries = json.loads((server.data_dir / "keys" / "keys.json").read_text())
    assert entries[0]["kid"] == old_kid
    assert entries[0]["retired_at"]
    new_kid = entries[1]["kid"]

    def jwks_kids() -> set[str]:
        return {k["kid"] for k in httpx.get(f"{server.url}/.well-known/jwks.json").json()["keys"]}

    _wait_for(lambda: jwks_kids() == {old_kid, new_kid}, "the new key in the JWKS")
    import jwt

    assert jwt.get_unverified_header(access_token(device))["kid"] == new_kid
    # tokens signed by the retired key stay valid until they expire
    authz = httpx.get(f"{server.url}/v1/authz", headers={"X-Api-Key": old_token})
    assert authz.status_code == 204
    events = run_server_cli(["audit", "list", "--data-dir", str(server.data_dir)])
    assert "admin.keys.rotate" in events


def test_rotation_drops_keys_retired_longer_than_the_max_ttl(tmp_path: Path) -> None:
    from server.tokens import KeyRing

    keys = tmp_path / "keys"
    first = KeyRing.create_key(keys, now=1_000)
    KeyRing.rotate(keys, now=2_000, max_token_ttl_s=500)  # first retired at 2000
    rotated = KeyRing.rotate(keys, now=2_400, max_token_ttl_s=500)
    assert first.kid in rotated.retired
    assert not rotated.dropped
    rotated = KeyRing.rotate(keys, now=2_600, max_token_ttl_s=500)
    assert rotated.dropped == (first.kid,)
    assert not (keys / f"{first.kid}.pem").exists()
    ring = KeyRing.load(keys)
    assert ring.active.kid == rotated.active
    assert len(ring.keys) == 3
