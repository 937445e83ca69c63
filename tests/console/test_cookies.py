"""Under TLS the session cookie is ``__Host-`` prefixed and Secure (in-process application)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from server.config import load_config
from server.console.accounts import create_password_user
from server.console.app import create_console_app
from server.console.context import build_console_context
from server.datadir import init_data_dir

PASSWORD = "a long enough password"


def test_tls_session_cookie_is_secure_host_only_strict_and_http_only(tmp_path: Path) -> None:
    config = init_data_dir(tmp_path / "data", issuer="t", database_url="")
    ctx = build_console_context(load_config(config.data_dir), secure_cookies=True)
    create_password_user(ctx.accounts, "alice", PASSWORD, now=ctx.now())
    with TestClient(create_console_app(ctx), base_url="https://console.test") as client:
        page = client.get("/login")
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        answer = client.post(
            "/login",
            data={"username": "alice", "password": PASSWORD, "csrf": csrf},
            follow_redirects=False,
        )
    assert answer.status_code == 303
    cookie = next(
        v
        for k, v in answer.headers.multi_items()
        if k == "set-cookie" and v.startswith("__Host-envattest-console=")
    )
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= flags
    assert not any(flag.startswith("domain=") for flag in flags)
    ctx.store.engine.dispose()
