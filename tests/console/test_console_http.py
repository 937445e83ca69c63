"""The console over HTTP against a real console process: who gets data and who does not,
cookies, CSRF, throttling, auditing of page views, and escaping of agent-supplied values."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from tests.console.fleet import FleetSpec
from tests.console.support import (
    HOSTILE,
    PASSWORD,
    ConsoleProcess,
    login_form,
    make_fleet_dir,
    sign_checkpoint,
)
from tests.servers import REPO, clean_env

PAGES = (
    "/",
    "/devices",
    "/devices/dev-0000001",
    "/fields",
    "/audit",
    "/alerts",
    "/audit/export.jsonl",
    "/charts/decisions.svg",
    "/charts/key-classes.svg",
    "/charts/field/timezone.iana.svg",
)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleProcess]:
    data_dir, _ = make_fleet_dir(
        tmp_path_factory.mktemp("console-http"),
        FleetSpec(
            devices=60,
            attestations_per_device=3,
            start_at=int(time.time()) - 86_400,
            span_s=80_000,
            hostile_value=HOSTILE,
        ),
        server_toml="[console]\nsign_in_per_minute = 600\n",
    )
    process = ConsoleProcess(data_dir).start()
    yield process
    process.stop()


def _db(console: ConsoleProcess) -> sqlite3.Connection:
    return sqlite3.connect(console.data_dir / "envattest.db")


@pytest.mark.parametrize("path", PAGES)
def test_unauthenticated_requests_get_no_data(console: ConsoleProcess, path: str) -> None:
    answer = httpx.get(console.url + path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")
    assert "dev-0000001" not in answer.text
    assert answer.text == ""


def test_wrong_password_gets_no_session_and_is_audited(console: ConsoleProcess) -> None:
    with httpx.Client(base_url=console.url) as client:
        answer = client.post("/login", data=login_form(client, "alice", "not the password!"))
        assert answer.status_code == 401
        assert "wrong username or password" in answer.text
        assert "envattest-console" not in client.cookies
        assert client.get("/", follow_redirects=False).status_code == 303
    with _db(console) as db:
        row = db.execute(
            "SELECT data FROM audit_log WHERE event = 'console.sign-in' ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    assert '"ok":false' in row[0]
    assert "wrong password" in row[0]


def test_unknown_user_and_disabled_user_are_refused_alike(console: ConsoleProcess) -> None:
    with httpx.Client(base_url=console.url) as client:
        answer = client.post("/login", data=login_form(client, "mallory", PASSWORD))
    assert answer.status_code == 401
    assert "wrong username or password" in answer.text


def test_sign_in_sets_a_strict_http_only_cookie_and_pages_render(console: ConsoleProcess) -> None:
    with httpx.Client(base_url=console.url) as client:
        answer = client.post("/login", data=login_form(client, "alice", PASSWORD))
        assert answer.status_code == 303
        cookie = next(
            v
            for k, v in answer.headers.multi_items()
            if k == "set-cookie" and v.startswith("envattest-console=")
        )
        assert "HttpOnly" in cookie
        assert "samesite=strict" in cookie.lower()
        for path in PAGES:
            page = client.get(path)
            assert page.status_code == 200, (path, page.text[:300])
            assert "default-src 'self'" in page.headers["content-security-policy"] or path.endswith(
                ".svg"
            )


def test_every_page_view_is_audited(console: ConsoleProcess) -> None:
    with closing(console.sign_in()) as client:
        client.get("/fields").raise_for_status()
    with _db(console) as db:
        row = db.execute(
            "SELECT data FROM audit_log WHERE event = 'console.view' ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    assert '"path":"/fields"' in row[0]
    assert '"user":"alice"' in row[0]


def test_expired_session_gets_no_data(console: ConsoleProcess) -> None:
    with closing(console.sign_in()) as client:
        assert client.get("/").status_code == 200
        with _db(console) as db:
            db.execute("UPDATE console_sessions SET expires_at = 1")
        answer = client.get("/devices", follow_redirects=False)
        assert answer.status_code == 303
        assert "expired" in answer.headers["location"]
        assert "dev-0000001" not in answer.text


def test_sign_in_without_the_csrf_cookie_is_refused(console: ConsoleProcess) -> None:
    with httpx.Client(base_url=console.url) as client:
        form = login_form(client, "alice", PASSWORD)
        client.cookies.clear()
        answer = client.post("/login", data=form)
    assert answer.status_code == 400
    assert "envattest-console=" not in answer.headers.get("set-cookie", "")


def test_a_signed_in_form_needs_its_session_token(console: ConsoleProcess) -> None:
    with closing(console.sign_in()) as client:
        answer = client.post("/audit/verify", data={"csrf": "0" * 64})
        assert answer.status_code == 403
        assert "stale" in answer.text
        with _db(console) as db:
            verifies = db.execute(
                "SELECT count(*) FROM audit_log WHERE event = 'console.audit-verify'"
            ).fetchone()[0]
        assert verifies == 0


def test_agent_supplied_html_is_shown_as_text(console: ConsoleProcess) -> None:
    with closing(console.sign_in()) as client:
        device = client.get("/devices/dev-0000000").text
        fields = client.get("/fields").text
    for page in (device, fields):
        assert HOSTILE not in page
        assert "&lt;script&gt;document.title=" in page or "\\u003cscript\\u003e" in page
        assert "<img src=x" not in page


def test_verify_run_is_shown_with_its_result(console: ConsoleProcess) -> None:
    with closing(console.sign_in()) as client:
        audit = client.get("/audit").text
        token = audit.split('name="csrf" value="')[1].split('"')[0]
        unproven = client.post("/audit/verify", data={"csrf": token}, follow_redirects=True)
        assert "no signed checkpoint covers the log" in unproven.text  # inconclusive is shown
        sign_checkpoint(console.data_dir)
        audit = client.get("/audit").text
        token = audit.split('name="csrf" value="')[1].split('"')[0]
        answer = client.post("/audit/verify", data={"csrf": token}, follow_redirects=True)
        assert answer.status_code == 200  # redirected back to /audit
        assert "verified</span>" in answer.text


def test_export_is_exactly_the_records_shown(console: ConsoleProcess) -> None:
    with closing(console.sign_in()) as client:
        page = client.get("/audit", params={"event": "attest", "decision": "deny"}).text
        export = client.get("/audit/export.jsonl", params={"event": "attest", "decision": "deny"})
    lines = export.text.splitlines()
    shown = page.count('<td class="deny">deny</td>')
    assert lines
    assert len(lines) == shown
    assert all('"decision": "deny"' in line and '"event": "attest"' in line for line in lines)


def test_sign_in_is_throttled(tmp_path: Path) -> None:
    data_dir, _ = make_fleet_dir(
        tmp_path, FleetSpec(devices=2), server_toml="[console]\nsign_in_per_minute = 3\n"
    )
    console = ConsoleProcess(data_dir).start()
    try:
        with httpx.Client(base_url=console.url) as client:
            codes = [
                client.post(
                    "/login", data=login_form(client, "alice", "wrong password!!")
                ).status_code
                for _ in range(4)
            ]
            right = client.post("/login", data=login_form(client, "alice", PASSWORD))
        assert codes[:3] == [401, 401, 401]
        assert codes[3] == 429
        assert right.status_code == 429  # even the right password waits
        assert int(right.headers["retry-after"]) >= 1
    finally:
        console.stop()


def test_console_user_list_and_disable_end_the_accounts_sessions(console: ConsoleProcess) -> None:
    def cli(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "server",
                "console-user",
                *args,
                "--data-dir",
                str(console.data_dir),
            ],
            input=stdin,
            capture_output=True,
            text=True,
            env=clean_env(),
            cwd=REPO,
            check=False,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    cli("create", "bob", "--password-stdin", stdin=PASSWORD + "\n")
    listed = {line.split()[0]: line.split()[1] for line in cli("list").splitlines()[1:]}
    assert listed["bob"] == "enabled"
    with closing(console.sign_in("bob")) as client:
        assert client.get("/fields").status_code == 200
        assert "console user bob disabled" in cli("disable", "bob")
        answer = client.get("/fields", follow_redirects=False)
        assert answer.status_code == 303  # the session ended with the account
    listed = {line.split()[0]: line.split()[1] for line in cli("list").splitlines()[1:]}
    assert listed["bob"] == "disabled"
    with httpx.Client(base_url=console.url) as client:
        refused = client.post("/login", data=login_form(client, "bob", PASSWORD))
    assert refused.status_code == 401


def test_the_last_signed_checkpoint_is_shown(console: ConsoleProcess) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "server",
            "audit",
            "checkpoint",
            "--data-dir",
            str(console.data_dir),
        ],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=REPO,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    with _db(console) as db:
        count, head = db.execute(
            "SELECT count, head_hash FROM audit_checkpoints ORDER BY count DESC LIMIT 1"
        ).fetchone()
    with closing(console.sign_in()) as client:
        page = client.get("/audit").text
    shown = page.split('id="checkpoint">')[1].split("</td>")[0]
    assert f"records 1-{count}" in shown
    assert head in shown
