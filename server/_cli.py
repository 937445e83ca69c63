"""``envattest-server``: the verifier's admin CLI. The only module here that prints or exits."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from attest import __version__
from server.errors import ServerError


def _data_dir(parser: argparse.ArgumentParser) -> None:
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
    print("next: envattest-server enroll-token create --data-dir ... ; envattest-server serve ...")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server.app import build_runtime, create_app
    from server.config import load_config

    config = load_config(args.data_dir, tpm_roots=args.tpm_roots)
    runtime = build_runtime(config)
    app = create_app(runtime)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
        access_log=False,
        workers=None,
    )
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
            {"token_sha256": digest, "uses": args.uses, "expires_in": args.expires_in},
        )
    )
    print(token)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to render help in docs)."""
    parser = argparse.ArgumentParser(prog="envattest-server", description=__doc__)
    parser.add_argument("--version", action="version", version=f"envattest-server {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="create a data directory: keys, database, manifest")
    _data_dir(p)
    p.add_argument("--issuer", default="envattest", help="token issuer (iss) name or URL")
    p.add_argument("--database-url", default="", help="SQLAlchemy URL; default SQLite file")
    p.set_defaults(func=_cmd_init)

    p = sub.add_parser("serve", help="run the verifier")
    _data_dir(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--tpm-roots", default=None, help="directory of trusted TPM EK CA PEMs")
    p.add_argument("--tls-cert", default=None, help="PEM certificate chain for HTTPS")
    p.add_argument("--tls-key", default=None, help="PEM private key for HTTPS")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("enroll-token", help="manage enrollment tokens")
    tsub = p.add_subparsers(dest="action", required=True)
    c = tsub.add_parser("create", help="create a token (printed once; stored hashed)")
    _data_dir(c)
    c.add_argument("--uses", type=int, default=1, help="how many enrollments it allows")
    c.add_argument("--expires-in", type=int, default=86400, help="lifetime in seconds")
    c.set_defaults(func=_cmd_enroll_token)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``envattest-server``."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ServerError as exc:
        print(f"envattest-server: {exc}", file=sys.stderr)
        return 2
    return code
