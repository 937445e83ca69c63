"""Console subcommands of ``envattest-server``: ``console`` (the web console) and
``console-user create|list|disable``. Prints and exits; the work is in ``server.console``."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from collections.abc import Callable
from typing import Any

from server.errors import ServerError

_Sub = Any  # argparse's private _SubParsersAction


def _accounts(args: argparse.Namespace) -> Any:
    from server.config import load_config
    from server.runtime import check_schema
    from server.store.console import ConsoleAccountStore
    from server.store.sql import SqlStore, make_engine

    store = SqlStore(make_engine(load_config(args.data_dir).resolved_database_url))
    check_schema(store)
    return store, ConsoleAccountStore(store.engine)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise ServerError("no terminal to ask for the password: pass --password-stdin")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise ServerError("the passwords differ; run the command again")
    return first


def _cmd_create(args: argparse.Namespace) -> int:
    from server.console.accounts import create_password_user
    from server.store import AuditEvent

    store, accounts = _accounts(args)
    password = _read_password(args)
    user = create_password_user(accounts, args.username, password, now=int(time.time()))
    store.append_audit(
        AuditEvent(
            "admin.console-user.create",
            None,
            None,
            {"user": user.username, "user_id": user.user_id, "provider": "password"},
        )
    )
    print(f"console user {user.username} created; sign in at the console's /login")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from server.admin import iso

    _, accounts = _accounts(args)
    print(f"{'username':<32}  {'state':<9}  created (UTC)")
    for user in accounts.users():
        state = "disabled" if user.disabled_at else "enabled"
        print(f"{user.username:<32}  {state:<9}  {iso(user.created_at)}")
    return 0


def _cmd_disable(args: argparse.Namespace) -> int:
    from server.store import AuditEvent

    store, accounts = _accounts(args)
    user = accounts.disable_user(args.username, now=int(time.time()))
    if user is None:
        raise ServerError(f"no console user {args.username!r}: see 'console-user list'")
    store.append_audit(
        AuditEvent("admin.console-user.disable", None, None, {"user": user.username})
    )
    print(f"console user {user.username} disabled; its sessions ended")
    return 0


def _cmd_console(args: argparse.Namespace) -> int:
    from server.config import load_config
    from server.console.app import ConsoleOptions, serve_console
    from server.console.context import build_console_context
    from server.logs import configure_logging

    if (args.tls_cert is None) != (args.tls_key is None):
        raise ServerError("give both --tls-cert and --tls-key, or neither")
    configure_logging(args.log_format, args.log_level)
    ctx = build_console_context(
        load_config(args.data_dir), secure_cookies=args.tls_cert is not None
    )
    serve_console(
        ctx,
        ConsoleOptions(
            host=args.host,
            port=args.port,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            log_level=args.log_level,
        ),
    )
    return 0


def add_commands(sub: _Sub, data_dir_option: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``console`` and ``console-user``."""
    p = sub.add_parser("console", help="serve the read-only web console for security teams")
    data_dir_option(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument(
        "--tls-cert", default=None, help="PEM certificate chain (then cookies are Secure)"
    )
    p.add_argument("--tls-key", default=None, help="PEM private key")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", default="text", choices=["json", "text"])
    p.set_defaults(func=_cmd_console)

    p = sub.add_parser("console-user", help="manage console accounts")
    usub = p.add_subparsers(dest="action", required=True)
    c = usub.add_parser("create", help="create an account that signs in with a password")
    data_dir_option(c)
    c.add_argument("username")
    c.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    c.set_defaults(func=_cmd_create)
    c = usub.add_parser("list", help="list accounts")
    data_dir_option(c)
    c.set_defaults(func=_cmd_list)
    c = usub.add_parser("disable", help="disable an account and end its sessions")
    data_dir_option(c)
    c.add_argument("username")
    c.set_defaults(func=_cmd_disable)
