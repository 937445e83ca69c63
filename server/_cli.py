"""``envattest-server``: the verifier's admin CLI. With ``_cli_admin`` the only modules here
that print or exit; the work is done by ``server.admin``, ``server.serve`` and friends."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from attest import __version__
from server import _cli_admin
from server.errors import ServerError
from server.policy import PolicyError


def data_dir_option(parser: argparse.ArgumentParser) -> None:
    """``--data-dir``, required by every command that uses a data directory."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        required=True,
        help="the verifier's data directory (keys, database, manifest, policy)",
    )


def _cmd_init(args: argparse.Namespace) -> int:
    from server.datadir import init_data_dir

    config = init_data_dir(args.data_dir, issuer=args.issuer, database_url=args.database_url)
    print(f"initialised {config.data_dir}")
    print(f"  database: {config.resolved_database_url}")
    print(f"  manifest: {config.manifest_path}")
    print(f"  policy:   {config.policy_path} (neutral default; edit, then SIGHUP)")
    print("next: envattest-server enroll-token create --data-dir ... ; envattest-server serve ...")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from server.config import load_config
    from server.serve import ServeOptions, serve

    if (args.tls_cert is None) != (args.tls_key is None):
        raise ServerError("give both --tls-cert and --tls-key, or neither")
    if args.workers < 1:
        raise ServerError("--workers must be at least 1")
    if args.purge_interval is not None and args.purge_interval < 1:
        raise ServerError("--purge-interval must be at least 1 second")
    config = load_config(args.data_dir, tpm_roots=args.tpm_roots)
    serve(
        config,
        ServeOptions(
            host=args.host,
            port=args.port,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            log_level=args.log_level,
            log_format=args.log_format,
            purge_interval_s=args.purge_interval,
            workers=args.workers,
        ),
    )
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    from server.config import load_config
    from server.store import AuditEvent
    from server.store.migrate import current_revision, head_revision, upgrade
    from server.store.sql import SqlStore, make_engine

    config = load_config(args.data_dir)
    engine = make_engine(config.resolved_database_url)
    try:
        before = current_revision(engine)
        upgrade(engine)
        after = head_revision()
        if before != after:
            SqlStore(engine).append_audit(
                AuditEvent("admin.migrate", None, None, {"from": before, "to": after})
            )
    finally:
        engine.dispose()
    print(f"database schema: {before or 'empty'} -> {after}")
    return 0


def _cmd_enroll_token(args: argparse.Namespace) -> int:
    from server.config import load_config
    from server.enrollment import new_enrollment_token, token_sha256
    from server.store import AuditEvent
    from server.store.sql import SqlStore, make_engine

    if args.uses < 1:
        raise ServerError("--uses must be at least 1")
    if args.expires_in < 1:
        raise ServerError("--expires-in must be at least 1 second")
    if len(args.note) > 200:
        raise ServerError("--note is at most 200 characters: a name or a ticket number")
    config = load_config(args.data_dir)
    store = SqlStore(make_engine(config.resolved_database_url))
    token = new_enrollment_token()
    digest = token_sha256(token)
    store.add_enrollment_token(
        digest, uses=args.uses, expires_at=int(time.time()) + args.expires_in
    )
    store.append_audit(
        AuditEvent(
            "admin.enroll-token.create",
            None,
            None,
            {
                "token_sha256": digest,
                "uses": args.uses,
                "expires_in": args.expires_in,
                **({"note": args.note} if args.note else {}),
            },
        )
    )
    print(token)
    return 0


def _cmd_openapi(args: argparse.Namespace) -> int:
    from server.openapi import openapi_document, render_openapi

    text = render_openapi(openapi_document())
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to render help in docs)."""
    parser = argparse.ArgumentParser(prog="envattest-server", description=__doc__)
    parser.add_argument("--version", action="version", version=f"envattest-server {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="create a data directory: keys, database, manifest, policy")
    data_dir_option(p)
    p.add_argument("--issuer", default="envattest", help="token issuer (iss) name or URL")
    p.add_argument("--database-url", default="", help="SQLAlchemy URL; default SQLite file")
    p.set_defaults(func=_cmd_init)

    p = sub.add_parser("serve", help="run the verifier (SIGHUP reloads manifest, policy, keys)")
    data_dir_option(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--tpm-roots", default=None, help="directory of trusted TPM EK CA PEMs")
    p.add_argument("--tls-cert", default=None, help="PEM certificate chain for HTTPS")
    p.add_argument("--tls-key", default=None, help="PEM private key for HTTPS")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--log-format", default="text", choices=["json", "text"], help="json: one object a line"
    )
    p.add_argument(
        "--purge-interval",
        type=int,
        default=None,
        metavar="SECONDS",
        help="run retention (like 'purge') every SECONDS; default off",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes sharing the port (default 1; see docs/performance.md)",
    )
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("migrate", help="bring the database schema to this version (keeps data)")
    data_dir_option(p)
    p.set_defaults(func=_cmd_migrate)

    p = sub.add_parser("enroll-token", help="manage enrollment tokens")
    tsub = p.add_subparsers(dest="action", required=True)
    c = tsub.add_parser("create", help="create a token (printed once; stored hashed)")
    data_dir_option(c)
    c.add_argument("--uses", type=int, default=1, help="how many enrollments it allows")
    c.add_argument("--expires-in", type=int, default=86400, help="lifetime in seconds")
    c.add_argument(
        "--note", default="", help="who gets it (or why), kept in the audit log with its hash"
    )
    c.set_defaults(func=_cmd_enroll_token)

    p = sub.add_parser("openapi", help="print the OpenAPI document (docs/openapi.json)")
    p.add_argument("--output", default=None, help="write to this file instead of stdout")
    p.set_defaults(func=_cmd_openapi)

    _cli_admin.add_commands(sub, data_dir_option)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``envattest-server``."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (ServerError, PolicyError) as exc:
        print(f"envattest-server: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before serve took over its signals, or in any command
        print("envattest-server: interrupted", file=sys.stderr)
        return 130
    return code
