"""Audit: the chain's state (head, last verify run, last signed checkpoint where present), a
verify run, filtered newest-first views, and a JSONL export of exactly the records shown."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from server.admin import audit_record_json, parse_since
from server.alerts.verify import alert_verify_failure
from server.audit import AuditChainError
from server.audit.anchor import AuditAnchor
from server.audit.checkpoints import CheckpointError
from server.console.auth import Viewer, check_form_token
from server.console.context import ConsoleContext
from server.console.render import render
from server.errors import ServerError
from server.store import AuditRecord
from server.store.fleet_queries import AuditFilter

PAGE = 100
VERIFY_EVENT = "console.audit-verify"


def _filter(request: Request) -> tuple[AuditFilter, dict[str, str], str]:
    q = {
        k: request.query_params.get(k, "")[:128]
        for k in ("event", "device", "decision", "since", "before")
    }
    error = ""
    since = None
    if q["since"]:
        try:
            since = parse_since(q["since"])
        except ServerError as exc:
            error = str(exc).replace("--since", "since")
    before = int(q["before"]) if q["before"].isdigit() else None
    flt = AuditFilter(
        event=q["event"],
        device_id=q["device"],
        decision=q["decision"],
        since=since,
        before_seq=before,
    )
    return flt, q, error


def run_verify(ctx: ConsoleContext, user: str) -> None:
    """Verify the whole log as ``audit verify`` does (chain, coverage of emptied records,
    signed checkpoints); record the result, and alert when it fails."""
    anchor = AuditAnchor(ctx.config.audit_checkpoint_key_path, ctx.config.audit_witness_path)
    try:
        verified = anchor.verify(ctx.store)
    except (AuditChainError, CheckpointError) as exc:
        seq = exc.seq if isinstance(exc, AuditChainError) else None
        ctx.record("audit-verify", {"user": user, "ok": False, "seq": seq, "error": str(exc)})
        alert_verify_failure(ctx.store, ctx.config, exc, now=ctx.now(), by=f"console user {user}")
        return
    last = verified.last_checkpoint
    ctx.record(
        "audit-verify",
        {
            "user": user,
            "ok": True,
            "records": verified.records,
            "head_hash": verified.head_hash,
            "purged": verified.purged,
            "checkpoints": verified.checkpoints,
            "last_checkpoint_count": last.count if last is not None else None,
        },
    )


def router() -> APIRouter:
    """``/audit``, ``/audit/verify``, ``/audit/export.jsonl``."""
    api = APIRouter()

    @api.get("/audit", response_class=HTMLResponse)
    def audit(request: Request, _who: Viewer) -> Response:
        ctx: ConsoleContext = request.app.state.ctx
        flt, q, error = _filter(request)
        records: list[AuditRecord] = [] if error else ctx.audit.page(flt, limit=PAGE)
        return render(
            request,
            "audit.html",
            {
                "records": records,
                "q": q,
                "error": error,
                "head": ctx.audit.head(),
                "verify": ctx.audit.latest(VERIFY_EVENT),
                "checkpoint": ctx.fleet.latest_checkpoint(),
                "next_before": records[-1].seq if len(records) == PAGE else None,
            },
        )

    @api.post("/audit/verify")
    def verify(
        request: Request, who: Viewer, csrf: Annotated[str, Form(max_length=64)]
    ) -> Response:
        ctx: ConsoleContext = request.app.state.ctx
        check_form_token(request, csrf)
        run_verify(ctx, who.user.username)
        return RedirectResponse("/audit", status_code=303)

    @api.get("/audit/export.jsonl")
    def export(request: Request, _who: Viewer) -> Response:
        ctx: ConsoleContext = request.app.state.ctx
        flt, _, error = _filter(request)
        records = [] if error else ctx.audit.page(flt, limit=PAGE)
        body = "".join(
            json.dumps(audit_record_json(r), ensure_ascii=False, sort_keys=True) + "\n"
            for r in records
        )
        return Response(
            body,
            media_type="application/x-ndjson",
            headers={
                "Content-Disposition": 'attachment; filename="envattest-audit.jsonl"',
                "Cache-Control": "no-store",
            },
        )

    return api
