"""Devices: a searchable, filterable list; a device's timeline of attestations with the
differences between consecutive evidence, its consent history, key class and proof, and its
usage observations."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from server.console.auth import Viewer
from server.console.context import ConsoleContext
from server.console.evidence import deny_reasons, evidence_changes
from server.console.render import render
from server.store import AuditRecord
from server.store.fleet_queries import PAGE, AuditFilter, DeviceFilter

TIMELINE = 50


def _params(request: Request) -> dict[str, str]:
    keys = ("q", "key_class", "state", "decision", "field", "value", "detail", "stale", "after")
    return {k: request.query_params.get(k, "")[:255] for k in keys}


def _timeline(records: list[AuditRecord]) -> list[dict[str, Any]]:
    """Newest first; each attestation with what changed since the one before it."""
    attests = [r for r in records if r.event == "attest" and r.data and "signals" in r.data]
    older = {a.seq: b for a, b in pairwise(attests)}
    out: list[dict[str, Any]] = []
    for r in records[:TIMELINE]:
        data = r.data or {}
        previous = older.get(r.seq)
        out.append(
            {
                "r": r,
                "reasons": deny_reasons(data) if r.decision == "deny" else [],
                "signals": data.get("signals") if isinstance(data.get("signals"), dict) else {},
                "changes": evidence_changes((previous.data or {})["signals"], data["signals"])
                if previous is not None
                else [],
                "step": data.get("step"),
                "purged": r.data is None,
            }
        )
    return out


def _consents(records: list[AuditRecord]) -> list[dict[str, Any]]:
    """Each change of consent (manifest, fields) in the device's evidence, newest first."""
    # records come newest first: keep the oldest record of each run of the same consent
    seen: list[dict[str, Any]] = []
    for r in reversed(records):
        consent = (r.data or {}).get("consent") if r.event == "attest" else None
        if not isinstance(consent, dict):
            continue
        key = (consent.get("manifest_sha256"), consent.get("fields"))
        if not seen or seen[-1]["key"] != key:
            seen.append({"seq": r.seq, "at": r.at, "consent": consent, "key": key})
    return list(reversed(seen))


def router() -> APIRouter:
    """``/devices`` and ``/devices/{device_id}``."""
    api = APIRouter()

    @api.get("/devices", response_class=HTMLResponse)
    def devices(request: Request, _who: Viewer) -> Response:
        ctx: ConsoleContext = request.app.state.ctx
        ctx.projection.catch_up(now=ctx.now())
        p = _params(request)
        stale_before = ctx.now() - ctx.token_ttl_s() if p["stale"] else None
        flt = DeviceFilter(
            q=p["q"],
            key_class=p["key_class"],
            state=p["state"],
            decision=p["decision"],
            field=p["field"],
            value=p["value"],
            detail=p["detail"] if "detail" in request.query_params else None,
            stale_before=stale_before,
            after=p["after"],
        )
        rows = ctx.fleet.devices(flt, limit=PAGE + 1)
        more = len(rows) > PAGE
        rows = rows[:PAGE]
        return render(
            request,
            "devices.html",
            {
                "rows": rows,
                "p": p,
                "next_after": rows[-1]["device_id"] if more else "",
                "key_classes": ("tpm2", "hardware-unverified", "software"),
            },
        )

    @api.get("/devices/{device_id}", response_class=HTMLResponse)
    def device(
        request: Request, device_id: str, _who: Viewer, before: int | None = None
    ) -> Response:
        ctx: ConsoleContext = request.app.state.ctx
        found = ctx.store.get_device(device_id[:64])
        if found is None:
            return render(request, "error.html", {"message": "no such device"}, status=404)
        records = ctx.audit.page(
            AuditFilter(device_id=found.device_id, before_seq=before), limit=TIMELINE * 2
        )
        enroll = ctx.audit.page(AuditFilter(event="enroll", device_id=found.device_id), limit=1)
        timeline = _timeline(records)
        networks, requests = ctx.fleet.usage(found.device_id, since=ctx.now() - 86_400)
        return render(
            request,
            "device.html",
            {
                "d": found,
                "state": ctx.fleet.device_state(found.device_id),
                "timeline": timeline,
                "consents": _consents(records),
                "enroll": enroll[0] if enroll else None,
                "usage": [r for r in records if r.event.startswith("usage.")],
                "networks": networks,
                "requests_24h": requests,
                "next_before": timeline[-1]["r"].seq if len(records) > TIMELINE else None,
            },
        )

    return api
