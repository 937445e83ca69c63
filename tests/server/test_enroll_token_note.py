"""``enroll-token create --note`` keeps who got a token in the audit log, with its hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.server.support import server_cli


def test_the_note_and_the_tokens_hash_are_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "v")
    assert server_cli(capsys, "init", "--data-dir", data, "--issuer", "https://v.test").code == 0
    made = server_cli(
        capsys, "enroll-token", "create", "--data-dir", data, "--uses", "3",
        "--expires-in", "604800", "--note", "team-a: alice, bob, carol (TICKET-12)",
    )  # fmt: skip
    assert made.code == 0, made.err
    token = made.out.strip()
    listed = json.loads(server_cli(capsys, "audit", "list", "--data-dir", data, "--json").out)
    created = [r for r in listed if r["event"] == "admin.enroll-token.create"][-1]["data"]
    assert created["note"] == "team-a: alice, bob, carol (TICKET-12)"
    assert created["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert (created["uses"], created["expires_in"]) == (3, 604800)


def test_an_overlong_note_says_what_fits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "v")
    server_cli(capsys, "init", "--data-dir", data, "--issuer", "https://v.test")
    made = server_cli(capsys, "enroll-token", "create", "--data-dir", data, "--note", "x" * 201)
    assert made.code != 0
    assert "at most 200 characters" in made.err
