"""``whoami`` and ``forget``: signed device requests to the verifier, and local wipe."""

from __future__ import annotations

import shutil
import time
from typing import Any

import httpx

from agent.client import VerifierClient
from agent.errors import ProtocolError, ServerUnreachableError
from agent.home import AgentHome
from attest.devicerequest import REQUEST_TYP, DeviceAction, sign_device_request
from attest.keys import KeyProvider


def device_request(
    *, home: AgentHome, client: VerifierClient, key: KeyProvider, action: DeviceAction
) -> dict[str, Any]:
    """Challenge, sign one request, send it, return the verifier's JSON answer."""
    enrollment = home.enrollment()
    nonce = client.challenge(enrollment.device_id)
    body = sign_device_request(
        device_id=enrollment.device_id,
        nonce=nonce,
        iat=int(time.time()),
        action=action,
        signer=key.sign,
    )
    try:
        response = client.raw_post(
            f"/v1/device/{action.value}",
            content=body.encode("ascii"),
            headers={"Content-Type": f"application/{REQUEST_TYP}"},
        )
    except httpx.HTTPError as exc:
        raise ServerUnreachableError(f"cannot reach the verifier: {exc}") from exc
    return client.json_answer(response, during=action.value)


def wipe_local_state(home: AgentHome) -> None:
    """Delete the agent's whole state directory (key, consent, token, log)."""
    if home.root.exists():
        shutil.rmtree(home.root)


def summarize_whoami(doc: dict[str, Any]) -> list[str]:
    """Human-readable lines for ``whoami``."""
    records = doc.get("records", [])
    if not isinstance(records, list):
        raise ProtocolError("whoami answer has no records list")
    enrolled = time.localtime(doc.get("enrolled_at", 0))
    lines = [
        f"device:     {doc.get('device_id')}",
        f"key class:  {doc.get('key_class')}",
        f"enrolled:   {time.strftime('%Y-%m-%d %H:%M:%S', enrolled)}",
        f"records:    {len(records)} held by the verifier",
    ]
    for rec in records:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rec.get("at", 0)))
        data = rec.get("data")
        fields = sorted((data or {}).get("signals", {})) if isinstance(data, dict) else []
        held = f"signals: {', '.join(fields)}" if fields else ("erased" if data is None else "")
        lines.append(
            f"  #{rec.get('seq')} {when} {rec.get('event')} {rec.get('decision') or ''} {held}"
        )
    return lines
