"""Admin subcommands of ``envattest-server``: audit, devices, keys, gateway credentials,
retention and policy. Prints and exits; the work is in ``server.admin``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from server.admin import (
    DECISIONS,
    Admin,
    audit_record_json,
    device_json,
    iso,
    open_admin,
    parse_since,
)
from server.audit import AuditChainError
from server.audit.checkpoints import CheckpointError
from server.errors import ServerError

_Sub = Any  # argparse's private _SubParsersAction


def _admin(args: argparse.Namespace) -> Admin:
    return open_admin(args.data_dir)


def _dumps(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, sort_keys=True)


# audit


def _cmd_audit_list(args: argparse.Namespace) -> int:
    filters = {
        "device_id": args.device,
        "since": parse_since(args.since) if args.since else None,
        "decision": args.decision,
    }
    records = _admin(args).audit_records(**filters)
    if args.json:
        print(json.dumps([audit_record_json(r) for r in records], indent=2, ensure_ascii=False))
        return 0
    print(f"{'seq':>6}  {'time (UTC)':<25}  {'event':<28}  {'decision':<8}  device")
    for r in records:
        decision = r.decision or "-"
        purged = "  [data purged]" if r.data is None else ""
        print(
            f"{r.seq:>6}  {iso(r.at):<25}  {r.event:<28}  {decision:<8}  "
            f"{r.device_id or '-'}{purged}"
        )
    return 0


def _cmd_audit_show(args: argparse.Namespace) -> int:
    record = _admin(args).store.audit_record(args.seq)
    if record is None:
        raise ServerError(f"no audit record {args.seq}: see 'envattest-server audit list'")
    print(json.dumps(audit_record_json(record), indent=2, ensure_ascii=False, sort_keys=True))
    return 0


def _export(admin: Admin, out: TextIO) -> int:
    count = 0
    for record in admin.audit_records():
        out.write(_dumps(audit_record_json(record)) + "\n")
        count += 1
    return count


def _cmd_audit_export(args: argparse.Namespace) -> int:
    admin = _admin(args)
    if args.output:
        with Path(args.output).open("w", encoding="utf-8") as out:
            count = _export(admin, out)
        print(f"exported {count} records to {args.output}", file=sys.stderr)
    else:
        _export(admin, sys.stdout)
    return 0


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    admin = _admin(args)
    try:
        verified = admin.verify_audit(public_key=args.public_key)
    except AuditChainError as exc:
        from server.alerts.verify import alert_verify_failure

        alert_verify_failure(admin.store, admin.config, exc, now=admin.now(), by="audit verify")
        print(
            f"envattest-server: audit log BROKEN at record {exc.seq}: {exc}. "
            "Treat the log from that record on as tampered; compare with your SIEM export.",
            file=sys.stderr,
        )
        return 1
    except CheckpointError as exc:
        from server.alerts.verify import alert_verify_failure

        alert_verify_failure(admin.store, admin.config, exc, now=admin.now(), by="audit verify")
        print(f"envattest-server: audit log NOT PROVEN: {exc}", file=sys.stderr)
        return 1
    print(
        f"audit chain verified: {verified.records} records ({verified.purged} with data purged "
        f"or erased, each covered by its event)"
    )
    print(f"head hash: {verified.head_hash}")
    last = verified.last_checkpoint
    if last is not None:
        tail = verified.records - last.count
        print(
            f"signed checkpoints: {verified.checkpoints}, newest at {iso(last.at)} covers "
            f"{last.count} records ({tail} written since)"
        )
    return 0


def _cmd_audit_checkpoint(args: argparse.Namespace) -> int:
    checkpoint = _admin(args).checkpoint_audit()
    print(
        f"checkpoint signed: {checkpoint.count} records, head {checkpoint.head_hash}, "
        f"key {checkpoint.key_id}"
    )
    if args.print_public_key:
        from server.audit.checkpoints import load_public_key, public_key_pem

        print(
            public_key_pem(load_public_key(_admin(args).config.audit_checkpoint_key_path)), end=""
        )
    return 0


# devices


def _cmd_devices_list(args: argparse.Namespace) -> int:
    devices = [device_json(d) for d in _admin(args).store.list_devices()]
    if args.json:
        print(json.dumps(devices, indent=2))
        return 0
    print(f"{'device':<30}  {'key class':<20}  {'state':<8}  enrolled (UTC)")
    for d in devices:
        print(f"{d['device_id']:<30}  {d['key_class']:<20}  {d['state']:<8}  {d['enrolled_at']}")
    return 0


def _cmd_devices_show(args: argparse.Namespace) -> int:
    admin = _admin(args)
    doc = device_json(admin.device(args.device_id))
    doc["audit_records"] = sum(1 for _ in admin.audit_records(device_id=args.device_id))
    print(json.dumps(doc, indent=2))
    return 0


def _cmd_devices_revoke(args: argparse.Namespace) -> int:
    device = _admin(args).revoke_device(args.device_id)
    print(f"revoked {device.device_id} at {iso(device.revoked_at)}: its tokens fail")
    print("introspection and forward auth now (gateways checking JWTs offline: at token expiry)")
    return 0


def _cmd_devices_erase(args: argparse.Namespace) -> int:
    erased = _admin(args).erase_device(args.device_id)
    print(f"erased {args.device_id}: revoked, signal data dropped from {erased} audit records")
    return 0


# keys, gateway credentials


def _cmd_keys_rotate(args: argparse.Namespace) -> int:
    rotated = _admin(args).rotate_keys()
    print(f"active signing key: {rotated.active}")
    if rotated.retired:
        print(f"still published (until their tokens expire): {', '.join(rotated.retired)}")
    if rotated.dropped:
        print(f"dropped: {', '.join(rotated.dropped)}")
    print("running servers switch within a second (keys.json changed) or on SIGHUP")
    return 0


def _cmd_keys_list(args: argparse.Namespace) -> int:
    from server.tokens import KeyRing

    ring = KeyRing.load(_admin(args).config.keys_dir)
    for key in ring.keys:
        state = "active" if key is ring.active else f"retired {iso(key.retired_at)}"
        print(f"{key.kid}  created {iso(key.created_at)}  {state}")
    return 0


def _cmd_gateway_credential(args: argparse.Namespace) -> int:
    presented = _admin(args).create_gateway_credential(args.name)
    print(presented)
    print(
        "shown once: give it to the gateway (Authorization: Bearer <it>, or HTTP Basic with the "
        "part before the first '.' as user and the rest as password)",
        file=sys.stderr,
    )
    return 0


def _cmd_gateway_credential_list(args: argparse.Namespace) -> int:
    for cred in _admin(args).gateway_credentials():
        state = "active" if cred.revoked_at is None else f"revoked {iso(cred.revoked_at)}"
        print(f"{cred.credential_id}  {cred.name}  created {iso(cred.created_at)}  {state}")
    return 0


def _cmd_gateway_credential_revoke(args: argparse.Namespace) -> int:
    _admin(args).revoke_gateway_credential(args.credential_id)
    print(f"revoked {args.credential_id}; introspection refuses it from now on")
    return 0


# retention


def _cmd_purge(args: argparse.Namespace) -> int:
    from attest.manifest import parse_manifest
    from server.retention import purge_expired

    admin = _admin(args)
    manifest = parse_manifest(admin.config.manifest_path.read_bytes())
    report = purge_expired(admin.store, manifest, now=int(time.time()), dry_run=args.dry_run)
    verb = "would purge" if report.dry_run else "purged"
    print(f"{verb} the data of {report.records_purged} attestation records past retention")
    if not report.dry_run:
        print(f"deleted {report.nonces_deleted} expired nonces")
    return 0


# policy


def _cmd_policy_check(args: argparse.Namespace) -> int:
    from server.policy import load_policy, policy_warnings

    policy = load_policy(Path(args.file))
    print(f"{args.file}: valid, policy {policy.version}, {len(policy.rules)} rules")
    for rule in policy.rules:
        print(f"  {rule.name} ({rule.mode.value})")
    print(f"  token: ttl {policy.token.ttl_s} s, audience {policy.token.audience}")
    for warning in policy_warnings(policy):
        print(f"warning: {warning}")
    return 0


def _cmd_policy_explain(args: argparse.Namespace) -> int:
    from attest.keys import KeyClass
    from attest.manifest import parse_manifest
    from server.policy import explain_evidence, load_policy, render_explanation
    from server.policy.defaults import default_policy

    config = None
    if args.data_dir is not None:
        from server.config import load_config

        config = load_config(args.data_dir)
    if args.policy:
        policy = load_policy(Path(args.policy))
    elif config is not None and config.policy_path.exists():
        policy = load_policy(config.policy_path)
    else:
        policy = default_policy()
    required = None
    if config is not None:
        manifest = parse_manifest(config.manifest_path.read_bytes())
        required = manifest.enforced_ids
    evidence = Path(args.evidence)
    try:
        data = evidence.read_bytes()
    except OSError as exc:
        raise ServerError(f"cannot read {evidence}: {exc.strerror or exc}") from None
    explanation = explain_evidence(
        policy, data, key_class=KeyClass(args.key_class), required=required, source=str(evidence)
    )
    print(render_explanation(explanation))
    return 0 if explanation.decision.allow else 1


def add_commands(sub: _Sub, data_dir: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register the admin subcommands on ``sub``."""
    p = sub.add_parser("audit", help="read, export and verify the hash-chained audit log")
    asub = p.add_subparsers(dest="action", required=True)
    c = asub.add_parser("list", help="records in order, filtered")
    data_dir(c)
    c.add_argument("--device", default=None, help="only this device id")
    c.add_argument("--since", default=None, help="from this time: ISO-8601 or unix seconds")
    c.add_argument("--decision", choices=DECISIONS, default=None)
    c.add_argument("--json", action="store_true", help="a JSON array with every column")
    c.set_defaults(func=_cmd_audit_list)
    c = asub.add_parser("show", help="one record with its data and hashes")
    data_dir(c)
    c.add_argument("seq", type=int)
    c.set_defaults(func=_cmd_audit_show)
    c = asub.add_parser("export", help="JSON Lines for a SIEM: one record a line, with hashes")
    data_dir(c)
    c.add_argument("--jsonl", action="store_true", required=True, help="JSON Lines (required)")
    c.add_argument("--output", default=None, help="write to FILE instead of stdout")
    c.set_defaults(func=_cmd_audit_export)
    c = asub.add_parser(
        "verify", help="recompute the chain, check purges and signed checkpoints; non-zero if not"
    )
    data_dir(c)
    c.add_argument(
        "--public-key",
        type=Path,
        default=None,
        help="checkpoint verification key (PEM) kept apart from the server; default: its key",
    )
    c.set_defaults(func=_cmd_audit_verify)
    c = asub.add_parser("checkpoint", help="sign the audit head now (serve does it on a schedule)")
    data_dir(c)
    c.add_argument(
        "--print-public-key", action="store_true", help="also print the verification key (PEM)"
    )
    c.set_defaults(func=_cmd_audit_checkpoint)

    p = sub.add_parser("devices", help="list, show, revoke and erase devices")
    dsub = p.add_subparsers(dest="action", required=True)
    c = dsub.add_parser("list", help="every enrolled device")
    data_dir(c)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_cmd_devices_list)
    for name, func, text in (
        ("show", _cmd_devices_show, "one device"),
        ("revoke", _cmd_devices_revoke, "revoke now (introspection and forward auth)"),
        ("erase", _cmd_devices_erase, "revoke and drop its signal data from the audit log"),
    ):
        c = dsub.add_parser(name, help=text)
        data_dir(c)
        c.add_argument("device_id", metavar="ID")
        c.set_defaults(func=func)

    p = sub.add_parser("keys", help="token-signing keys")
    ksub = p.add_subparsers(dest="action", required=True)
    c = ksub.add_parser("rotate", help="new active key; old keys stay published until expiry")
    data_dir(c)
    c.set_defaults(func=_cmd_keys_rotate)
    c = ksub.add_parser("list", help="published keys")
    data_dir(c)
    c.set_defaults(func=_cmd_keys_list)

    p = sub.add_parser("gateway-credential", help="credentials for POST /v1/introspect")
    gsub = p.add_subparsers(dest="action", required=True)
    c = gsub.add_parser("create", help="create one (printed once; stored hashed)")
    data_dir(c)
    c.add_argument("--name", default="gateway", help="a label for the audit log")
    c.set_defaults(func=_cmd_gateway_credential)
    c = gsub.add_parser("list", help="every credential: id, name, created, state")
    data_dir(c)
    c.set_defaults(func=_cmd_gateway_credential_list)
    c = gsub.add_parser("revoke", help="revoke one; refused at once on every replica")
    data_dir(c)
    c.add_argument("credential_id", help="the gw_... id from 'gateway-credential list'")
    c.set_defaults(func=_cmd_gateway_credential_revoke)

    p = sub.add_parser("purge", help="apply the manifest's retention; delete expired nonces")
    data_dir(p)
    p.add_argument("--dry-run", action="store_true", help="count, change nothing")
    p.set_defaults(func=_cmd_purge)

    p = sub.add_parser("policy", help="check and explain policy files")
    psub = p.add_subparsers(dest="action", required=True)
    c = psub.add_parser("check", help="validate a policy file (errors name key and line)")
    c.add_argument("file", metavar="FILE")
    c.set_defaults(func=_cmd_policy_check)
    c = psub.add_parser("explain", help="evaluate a policy on saved evidence, offline")
    c.add_argument("evidence", metavar="EVIDENCE_FILE", help="compact JWS or its claims JSON")
    c.add_argument("--policy", default=None, help="policy file (default: the data dir's)")
    c.add_argument("--data-dir", type=Path, default=None, help="take policy and manifest here")
    c.add_argument(
        "--key-class",
        default="software",
        choices=["tpm2", "hardware-unverified", "software"],
        help="the key class to assume (offline it cannot be proven)",
    )
    c.set_defaults(func=_cmd_policy_explain)
