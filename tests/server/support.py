"""Helpers for server tests: the admin CLI in process, and an enrolled device with a token."""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from server._cli import main
from tests.devices import TestDevice
from tests.servers import VerifierProcess


@dataclass(frozen=True)
class CliRun:
    """Exit code and output of one in-process ``envattest-server`` run."""

    code: int
    out: str
    err: str


def server_cli(capsys: pytest.CaptureFixture[str], *args: str) -> CliRun:
    """Run ``envattest-server ARGS`` in this process."""
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return CliRun(code, captured.out, captured.err)


def enrolled_device(server: VerifierProcess, key_path: Path) -> TestDevice:
    """A software-key device enrolled with a fresh enrollment token."""
    return TestDevice.enroll(server.url, server.enroll_token(), key_path)


def access_token(device: TestDevice) -> str:
    """Attest once and return the access token."""
    answer = device.attest(device.evidence())
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def offline_copy(server: VerifierProcess, target: Path) -> Path:
    """A consistent copy of a running SQLite verifier's data directory, to tamper with."""
    shutil.copytree(
        server.data_dir, target, ignore=shutil.ignore_patterns("envattest.db*"), dirs_exist_ok=False
    )
    with (
        sqlite3.connect(server.data_dir / "envattest.db") as source,
        sqlite3.connect(target / "envattest.db") as copy,
    ):
        source.backup(copy)
    return target


def server_signing_key(data_dir: Path) -> tuple[str, ec.EllipticCurvePrivateKey]:
    """The verifier's active token-signing key (to mint expired but genuine tokens)."""
    from server.tokens import KeyRing

    active = KeyRing.load(data_dir / "keys").active
    return active.kid, active.private_key


def mint_token(
    claims: dict[str, Any], *, key: ec.EllipticCurvePrivateKey | None, kid: str, alg: str = "ES256"
) -> str:
    """A JWT with chosen claims; ``key=None`` and ``alg='none'`` make an unsigned one."""
    headers = {"kid": kid, "typ": "at+jwt"}
    if alg == "none":
        return jwt.encode(claims, None, algorithm="none", headers=headers)  # type: ignore[arg-type]
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a token, unverified."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def other_key() -> ec.EllipticCurvePrivateKey:
    """A P-256 key the verifier does not know."""
    return ec.generate_private_key(ec.SECP256R1())
