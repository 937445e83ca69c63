"""``envattest``: the agent CLI. The only module here that prints or exits.

Imports are deferred into each command so that ``envattest token`` with a valid cached token
touches nothing but the standard library (and ``attest/__init__``, for the version); a test
holds that line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attest import __version__ as VERSION

if TYPE_CHECKING:
    from agent.client import VerifierClient
    from agent.collectors import CollectionContext
    from agent.home import AgentHome, Enrollment
    from attest.keys import KeyProvider
    from attest.manifest import Manifest

EXIT_ERROR, EXIT_DENIED, EXIT_CONSENT = 1, 3, 4


def _home(args: argparse.Namespace) -> AgentHome:
    from agent.home import AgentHome, resolve_home

    return AgentHome(resolve_home(args.home))


def _context(args: argparse.Namespace) -> CollectionContext:
    from agent.collectors import CollectionContext

    project = Path(args.project) if getattr(args, "project", None) else None
    return CollectionContext.for_this_machine(project_dir=project)


def _client(server: str, ca_file: str | None) -> VerifierClient:
    from agent.client import VerifierClient

    return VerifierClient(server, ca_file=ca_file)


def _load_key(home: AgentHome, enrollment: Enrollment) -> KeyProvider:
    from agent.devicekey import load_key

    return load_key(home, enrollment)


def _print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False))


def _ask_consent(
    manifest: Manifest, fields: tuple[str, ...], args: argparse.Namespace, server: str
) -> None:
    """Show the manifest and take an explicit yes, or the exact hash given on the command line."""
    from agent.consent import render_prompt
    from agent.errors import ConsentRequiredError

    examples: dict[str, object] = {}
    try:
        from agent.collectors import collect_signals

        examples = {str(k): v for k, v in collect_signals(_context(args), fields).items()}
    except Exception as exc:  # an example that cannot be computed must not block consent
        print(f"(could not compute example values: {exc})", file=sys.stderr)
    for line in render_prompt(manifest, examples, server=server):
        print(line, file=sys.stderr)
    print(f"\nFields you would send: {', '.join(fields) or '(none)'}", file=sys.stderr)
    accepted = args.accept_manifest
    if accepted is not None:
        if accepted.lower() != manifest.sha256:
            raise ConsentRequiredError(
                f"--accept-manifest {accepted} does not match the verifier's manifest "
                f"{manifest.sha256}; read the fields above and pass the hash shown"
            )
        print("Consent given with --accept-manifest for this exact manifest.", file=sys.stderr)
        return
    if not sys.stdin.isatty():
        raise ConsentRequiredError(
            "consent needed: run interactively, or pass --accept-manifest "
            f"{manifest.sha256} to agree to exactly the manifest shown above"
        )
    try:
        answer = input("Send these fields to the verifier? Type 'yes' to agree: ")
    except EOFError:
        raise ConsentRequiredError(
            "no answer (end of input): consent not given, nothing was enrolled or sent; run "
            f"again and type 'yes', or pass --accept-manifest {manifest.sha256}"
        ) from None
    answer = answer.strip().lower()
    if answer not in ("y", "yes"):
        raise ConsentRequiredError("consent declined: nothing was enrolled or sent")


def _cmd_init(args: argparse.Namespace) -> int:
    from agent.consent import choose_fields
    from agent.enroll import enroll_device, prepare_enrollment
    from agent.home import ConsentRecord

    home = _home(args)
    if home.enrollment_path.exists() and not args.force:
        print(
            f"envattest: already enrolled ({home.enrollment_path}); use 'envattest consent' to "
            "review consent, or 'envattest forget' then 'envattest init' to enroll again",
            file=sys.stderr,
        )
        return EXIT_ERROR
    client = _client(args.server, args.ca_file)
    manifest = client.manifest()
    fields = choose_fields(manifest, only=_split(args.only), exclude=_split(args.exclude))
    tcti = args.tcti or os.environ.get("ENVATTEST_TCTI")
    announce = lambda line: print(line, file=sys.stderr)  # noqa: E731
    # nobody is asked to consent on a machine that cannot enroll: key and token first
    choice = prepare_enrollment(
        client=client,
        enrollment_token=args.enroll_token,
        key_choice=args.key,
        allow_fallback=args.allow_software_fallback,
        tcti=tcti,
        announce=announce,
    )
    _ask_consent(manifest, fields, args, args.server)
    home.ensure()
    enrollment = enroll_device(
        home=home,
        client=client,
        server=args.server,
        enrollment_token=args.enroll_token,
        choice=choice,
        ca_file=args.ca_file,
        tcti=tcti,
        announce=announce,
    )
    home.save_consent(
        ConsentRecord(
            server=args.server,
            manifest_sha256=manifest.sha256,
            granted_at=int(time.time()),
            fields=fields,
        )
    )
    print(
        f"enrolled {enrollment.device_id} (key class recorded by the verifier: "
        f"{enrollment.key_class}); next: envattest attest",
        file=sys.stderr,
    )
    return 0


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def _cmd_consent(args: argparse.Namespace) -> int:
    from agent.consent import choose_fields
    from agent.home import ConsentRecord

    home = _home(args)
    enrollment = home.enrollment()
    if args.revoke:
        record = home.consent()
        if record is not None and record.active:
            from dataclasses import replace

            home.save_consent(replace(record, revoked_at=int(time.time())))
        home.drop_token()
        print("consent revoked: nothing will be collected or sent until you consent again")
        return 0
    client = _client(enrollment.server, enrollment.ca_file)
    manifest = client.manifest()
    fields = choose_fields(manifest, only=_split(args.only), exclude=_split(args.exclude))
    _ask_consent(manifest, fields, args, enrollment.server)
    home.save_consent(
        ConsentRecord(
            server=enrollment.server,
            manifest_sha256=manifest.sha256,
            granted_at=int(time.time()),
            fields=fields,
        )
    )
    home.drop_token()
    print(f"consent recorded for manifest {manifest.sha256}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from agent.attestation import PREVIEW_NONCE, build_claims
    from agent.consent import require_consent

    home = _home(args)
    enrollment = home.enrollment()
    consent = require_consent(home.consent())
    claims = build_claims(
        device_id=enrollment.device_id,
        consent=consent,
        ctx=_context(args),
        nonce=PREVIEW_NONCE,
        now=int(time.time()),
    ).to_json()
    if args.json:
        _print_json(claims)
        return 0
    print(f"Would send to {enrollment.server} (signed with the {enrollment.key_provider} key):")
    _print_json(claims)
    print("Nothing was sent. 'envattest attest' sends exactly this, with a fresh nonce.")
    return 0


def _attest(args: argparse.Namespace, home: AgentHome) -> Any:
    from agent.attestation import attest_once

    enrollment = home.enrollment()
    client = _client(enrollment.server, enrollment.ca_file)
    try:
        return attest_once(
            home=home, client=client, key=_load_key(home, enrollment), ctx=_context(args)
        )
    finally:
        client.close()


def _cmd_attest(args: argparse.Namespace) -> int:
    from agent.errors import AccessDeniedError

    home = _home(args)
    try:
        result = _attest(args, home)
    except AccessDeniedError as exc:
        if args.json:
            _print_json({"decision": "deny", "reasons": exc.reasons})
        else:
            print("decision: deny")
            for reason in exc.reasons:
                print(f"  - {reason}")
        return EXIT_DENIED
    granted = result.granted
    if args.json:
        _print_json(
            {
                "decision": "allow",
                "reasons": granted.reasons,
                "access_token": granted.access_token,
                "expires_in": granted.expires_in,
            }
        )
        return 0
    print("decision: allow")
    for reason in granted.reasons:
        print(f"  - {reason}")
    print(f"access token valid for {granted.expires_in} s (cached; 'envattest token' prints it)")
    return 0


def _token(args: argparse.Namespace) -> str:
    """A valid access token: the cached one if the verifier still accepts it (stdlib only),
    else a fresh attestation. A device the verifier refused fails fast, saying how to recover."""
    from agent.tokencache import cached_token, inactive_notice, verifier_token_status

    if args.home:
        root = Path(args.home).expanduser()
    elif os.environ.get("ENVATTEST_HOME"):
        root = Path(os.environ["ENVATTEST_HOME"]).expanduser()
    else:
        root = _home(args).root
    notice = inactive_notice(root)
    if notice is not None:
        from agent.errors import DeviceInactiveError

        raise DeviceInactiveError(notice)
    token = cached_token(root / "token.json")
    if token is not None:
        status = verifier_token_status(root, token)
        if status.state == "device-inactive":
            from agent.errors import DeviceInactiveError
            from agent.home import AgentHome

            inactive = DeviceInactiveError(status.detail)
            AgentHome(root).mark_inactive(str(inactive), at=int(time.time()))
            raise inactive
        if status.state == "refresh":
            token = None
    if token is None:
        from agent.home import AgentHome

        token = _attest(args, AgentHome(root)).granted.access_token
    return token


def _cmd_token(args: argparse.Namespace) -> int:
    sys.stdout.write(_token(args) + "\n")
    return 0


def _device_proxy(args: argparse.Namespace, environ_for: Any) -> Any:
    """The loopback proxy for this device, attesting as ``environ_for(endpoint)`` is seen."""
    from agent.errors import AgentError
    from agent.proxy.device import device_proxy
    from agent.proxy.rewrite import Upstream

    if not args.upstream:
        raise AgentError("the proxy needs --upstream https://GATEWAY, your organisation's gateway")
    upstream = Upstream.parse(args.upstream)
    home = _home(args)
    return device_proxy(
        home,
        _load_key(home, home.enrollment()),
        upstream=upstream,
        context=_context(args),
        environ_for=environ_for,
        ca_file=args.ca_file,
        port=getattr(args, "port", 0),
        report=lambda line: print(line, file=sys.stderr),
    )


def _cmd_proxy(args: argparse.Namespace) -> int:
    from agent.proxy.toolenv import marked_environment

    proxy = _device_proxy(args, lambda endpoint: marked_environment(os.environ, endpoint))
    endpoint = proxy.start()
    print(endpoint.base_url, flush=True)
    print(
        f"envattest proxy: forwarding to {endpoint.upstream.url}; give your tool the base URL "
        "above (it holds this run's secret); Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    import signal

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("envattest proxy: stopped", file=sys.stderr)
    finally:
        proxy.stop()
    return 0


def _cmd_exec_via_proxy(args: argparse.Namespace) -> int:
    from agent.execwrap import command_argv, run_via_proxy
    from agent.proxy.toolenv import tool_environment, wiring_for

    wiring = wiring_for(command_argv(args.command)[0], args.tool)

    def environment(endpoint: Any) -> dict[str, str]:
        return tool_environment(os.environ, wiring, endpoint)

    proxy = _device_proxy(args, environment)
    return run_via_proxy(args.command, proxy=proxy, environment=environment)


def _cmd_exec(args: argparse.Namespace) -> int:
    from agent.execwrap import check_env_var_name, command_argv, run_with_token

    if args.via_proxy:
        return _cmd_exec_via_proxy(args)
    if args.upstream or args.tool or args.ca_file:
        from agent.errors import AgentError

        raise AgentError("--upstream, --tool and --ca-file apply only with --via-proxy")
    check_env_var_name(args.env_var)
    command_argv(args.command)  # usage errors before any attestation
    token = _token(args)
    sys.stdout.flush()
    sys.stderr.flush()
    return run_with_token(args.command, env_var=args.env_var, token=token, environ=os.environ)


def _cmd_doctor(args: argparse.Namespace) -> int:
    from agent.doctor import run_checks

    report = run_checks(
        _home(args),
        client_factory=_client,
        key_loader=_load_key,
        context_factory=lambda: _context(args),
        environ=os.environ,
        server=args.server,
        ca_file=args.ca_file,
    )
    if args.json:
        _print_json(report.to_json())
    else:
        width = max(len(c.name) for c in report.checks)
        for check in report.checks:
            fix = f" -> {check.fix}" if check.status == "FAIL" and check.fix else ""
            print(f"{check.status}  {check.name:<{width}}  {check.detail}{fix}")
    return 0 if report.ok else EXIT_ERROR


def _cmd_status(args: argparse.Namespace) -> int:
    home = _home(args)
    enrollment = home.enrollment()
    consent = home.consent()
    token_doc: dict[str, Any] = {}
    if home.token_path.exists():
        try:
            token_doc = json.loads(home.token_path.read_text())
        except ValueError:
            token_doc = {}
    expires_at = token_doc.get("expires_at")
    status = {
        "server": enrollment.server,
        "device_id": enrollment.device_id,
        "key_provider": enrollment.key_provider,
        "key_class": enrollment.key_class,
        "consent": None
        if consent is None
        else {
            "manifest_sha256": consent.manifest_sha256,
            "granted_at": consent.granted_at,
            "fields": list(consent.fields),
            "revoked": not consent.active,
        },
        "device_inactive_since": home.inactive_since(),
        "token_expires_at": expires_at,
        "token_valid_for_s": max(0, int(expires_at - time.time())) if expires_at else 0,
    }
    if args.json:
        _print_json(status)
        return 0
    print(f"server:      {status['server']}")
    print(f"device:      {status['device_id']}")
    print(
        f"key:         {status['key_provider']} (class recorded by verifier: {status['key_class']})"
    )
    if consent is None:
        print("consent:     none (run 'envattest consent')")
    else:
        state = "revoked" if not consent.active else f"{len(consent.fields)} fields"
        print(f"consent:     {state}, manifest {consent.manifest_sha256[:16]}...")
    left = status["token_valid_for_s"]
    print(f"token:       {'valid for ' + str(left) + ' s' if left else 'none cached'}")
    if status["device_inactive_since"] is not None:
        from agent.errors import DeviceInactiveError

        print(f"DEVICE:      refused by the verifier: {DeviceInactiveError()}")
        return EXIT_ERROR
    return 0


def _cmd_log(args: argparse.Namespace) -> int:
    entries = _home(args).read_log()
    if args.json:
        _print_json(entries)
        return 0
    if not entries:
        print("nothing has been sent from this machine")
    for entry in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.get("at", 0)))
        if entry.get("event") == "sent":
            fields = ", ".join(sorted(entry.get("claims", {}).get("signals", {}))) or "(none)"
            print(f"{when}  sent to {entry.get('server')}: {fields}")
        else:
            print(f"{when}  {entry.get('event')}: {entry.get('reasons', '')}")
    return 0


def _cmd_whoami(args: argparse.Namespace) -> int:
    from agent.selfservice import device_request, summarize_whoami
    from attest.devicerequest import DeviceAction

    home = _home(args)
    enrollment = home.enrollment()
    client = _client(enrollment.server, enrollment.ca_file)
    doc = device_request(
        home=home, client=client, key=_load_key(home, enrollment), action=DeviceAction.WHOAMI
    )
    if args.json:
        _print_json(doc)
    else:
        print("\n".join(summarize_whoami(doc)))
    return 0


def _cmd_forget(args: argparse.Namespace) -> int:
    from agent.selfservice import device_request, wipe_local_state
    from attest.devicerequest import DeviceAction

    home = _home(args)
    if not args.local:
        enrollment = home.enrollment()
        client = _client(enrollment.server, enrollment.ca_file)
        doc = device_request(
            home=home, client=client, key=_load_key(home, enrollment), action=DeviceAction.FORGET
        )
        print(
            f"the verifier revoked {doc.get('device_id')} and erased "
            f"{doc.get('erased_records')} records of its signal history"
        )
    kept = wipe_local_state(home)
    if kept:
        print(
            f"envattest's own files removed; {home.root} was left in place because it holds "
            f"files envattest did not create: {', '.join(kept)}"
        )
    else:
        print(f"local state removed ({home.root})")
    return 0


def _cmd_fields(args: argparse.Namespace) -> int:
    from attest.catalog.docs import render_markdown, render_text

    print(render_markdown() if args.markdown else render_text(), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog="envattest",
        description="Attest this machine's AI-tool environment to your organisation's "
        "verifier, with your consent, showing exactly what is sent.",
    )
    parser.add_argument("--version", action="version", version=f"envattest {VERSION}")
    parser.add_argument("--home", help="state directory (default: ENVATTEST_HOME or per-user)")
    sub = parser.add_subparsers(dest="command", required=True)

    def consent_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--accept-manifest",
            metavar="SHA256",
            help="agree to exactly the manifest with this SHA-256 (no prompt)",
        )
        p.add_argument(
            "--only", action="append", metavar="FIELD[,FIELD]", help="consent to these fields only"
        )
        p.add_argument(
            "--exclude",
            action="append",
            metavar="FIELD[,FIELD]",
            help="do not consent to these fields",
        )
        p.add_argument("--project", help="project directory for project-level tool settings")

    def upstream_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--upstream", metavar="URL", help="your organisation's gateway, https://...")
        p.add_argument("--ca-file", help="PEM CA bundle for a gateway with a private CA")

    p = sub.add_parser("init", help="show the verifier's manifest, ask consent, enroll a key")
    p.add_argument(
        "--server", required=True, help="verifier base URL, e.g. https://verifier.example"
    )
    p.add_argument("--enroll-token", required=True, help="enrollment token from your administrator")
    p.add_argument(
        "--key",
        default="auto",
        choices=["auto", "tpm2", "windows-pcp", "secure-enclave", "software"],
        help="key provider (auto: strongest available)",
    )
    p.add_argument(
        "--allow-software-fallback",
        action="store_true",
        help="with --key auto, fall back to a software key if no hardware key is usable",
    )
    p.add_argument("--tcti", help="TPM TCTI (default ENVATTEST_TCTI or device:/dev/tpmrm0)")
    p.add_argument("--ca-file", help="PEM CA bundle for a verifier with a private CA")
    p.add_argument("--force", action="store_true", help=argparse.SUPPRESS)
    consent_options(p)
    p.set_defaults(func=_cmd_init)

    p = sub.add_parser("consent", help="review the manifest and grant consent again, or revoke")
    p.add_argument("--revoke", action="store_true", help="withdraw consent: nothing is sent")
    consent_options(p)
    p.set_defaults(func=_cmd_consent)

    for name, func, helptext in (
        ("show", _cmd_show, "print exactly the claims that would be sent; sends nothing"),
        ("attest", _cmd_attest, "attest now and print the decision"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.add_argument("--project", help="project directory for project-level tool settings")
        p.set_defaults(func=func)

    p = sub.add_parser(
        "token", help="print a valid access token (cached or fresh); for apiKeyHelper"
    )
    p.add_argument("--project", help="project directory for project-level tool settings")
    p.set_defaults(func=_cmd_token)

    p = sub.add_parser(
        "exec",
        help="run a command with a fresh access token in an environment variable",
        description="Run COMMAND with a valid access token in the environment variable NAME "
        "(e.g. OPENAI_API_KEY for tools that read their key from the environment). The "
        "command's exit code is passed through.",
    )
    p.add_argument(
        "--env-var",
        default="ENVATTEST_TOKEN",
        metavar="NAME",
        help="environment variable that receives the token (default ENVATTEST_TOKEN)",
    )
    p.add_argument("--project", help="project directory for project-level tool settings")
    p.add_argument(
        "--via-proxy",
        action="store_true",
        help="run COMMAND with its base URL at a loopback proxy that adds the token and a "
        "proof of this device's key to every request (claude, codex, gemini, aider)",
    )
    upstream_options(p)
    p.add_argument(
        "--tool",
        choices=["claude", "codex", "gemini", "aider"],
        help="with --via-proxy: which tool's variables to set (default: from COMMAND's name)",
    )
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    p.set_defaults(func=_cmd_exec)

    p = sub.add_parser(
        "proxy",
        help="serve a loopback proxy to your gateway that adds the token and a proof of this "
        "device's key to every request; prints the base URL to give a tool",
    )
    upstream_options(p)
    p.add_argument("--port", type=int, default=0, help="loopback port (default: a free one)")
    p.add_argument("--project", help="project directory for project-level tool settings")
    p.set_defaults(func=_cmd_proxy)

    p = sub.add_parser(
        "doctor",
        help="check server, proxy, TLS, enrollment, consent, key and token; say what to fix",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--server", help="check this verifier URL instead of the enrolled one")
    p.add_argument("--ca-file", help="PEM CA bundle to trust for --server")
    p.add_argument("--project", help="project directory for project-level tool settings")
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser("status", help="enrollment, key class, consent and token state")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser("log", help="every submission this machine made, with the exact claims")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_log)

    p = sub.add_parser("whoami", help="what the verifier holds about this device")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_whoami)

    p = sub.add_parser(
        "forget", help="revoke this device, erase its history at the verifier, wipe local state"
    )
    p.add_argument("--local", action="store_true", help="only wipe local state")
    p.set_defaults(func=_cmd_forget)

    p = sub.add_parser("fields", help="the field catalog: everything the agent can ever send")
    p.add_argument("--markdown", action="store_true")
    p.set_defaults(func=_cmd_fields)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``envattest``."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        sys.stdout.flush()
    except KeyboardInterrupt:
        print("envattest: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``envattest log | head``): nothing more to say to it
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as exc:
        return _exit_code_for(exc)
    return code


def _exit_code_for(exc: Exception) -> int:
    """Print an agent error as one line and map it to an exit code; re-raise anything else.

    The error classes are imported here, not at the top, to keep the cached-token path light.
    """
    from agent.errors import AccessDeniedError, AgentError, ConsentRequiredError
    from agent.execwrap import CommandError
    from attest.errors import AttestError

    if isinstance(exc, OSError) and not isinstance(exc, AgentError | AttestError):
        where = f" ({exc.filename})" if exc.filename else ""
        print(
            f"envattest: {exc.strerror or exc}{where}; check that the directory is writable "
            "and the disk has space (--home DIR chooses another state directory)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    if not isinstance(exc, AgentError | AttestError):
        raise exc
    print(f"envattest: {exc}", file=sys.stderr)
    if isinstance(exc, AccessDeniedError):
        return EXIT_DENIED
    if isinstance(exc, ConsentRequiredError):
        return EXIT_CONSENT
    if isinstance(exc, CommandError):
        return exc.exit_code
    return EXIT_ERROR
