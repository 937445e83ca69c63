"""``envattest-gateway``: tools for gateways that check envattest tokens themselves."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx

from envattest_gateway.errors import VerifierUnavailableError
from envattest_gateway.jwks import parse_jwks
from envattest_gateway.pem import write_key_files


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="envattest-gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    pem = sub.add_parser(
        "jwks-pem", help="write the verifier's public keys as PEM files (HAProxy jwt_verify)"
    )
    pem.add_argument("--jwks-url", required=True, help="https://VERIFIER/.well-known/jwks.json")
    pem.add_argument("--out-dir", type=Path, required=True, help="directory for <kid>.pem files")
    pem.add_argument("--ca-file", default=None, help="CA bundle for a verifier on a private CA")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = _parser().parse_args(argv)
    try:
        answer = httpx.get(args.jwks_url, timeout=10, verify=args.ca_file or True)
        answer.raise_for_status()
        written = write_key_files(parse_jwks(answer.content), args.out_dir)
    except httpx.HTTPError as exc:
        print(f"envattest-gateway: cannot fetch {args.jwks_url}: {exc}", file=sys.stderr)
        return 1
    except (VerifierUnavailableError, ValueError, OSError) as exc:
        print(f"envattest-gateway: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
