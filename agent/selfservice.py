"""``whoami`` and ``forget``: signed device requests to the verifier, and local wipe."""

from __future__ import annotations

import time
from pathlib import Path
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


def wipe_local_state(home: AgentHome) -> list[str]:
    """Delete the files the agent created (key, consent, token, log) and, if nothing else is
    left, the directory. Returns the names of what was left because the agent did not make it:
    ``--home`` may point at a directory that holds other things."""
    if not home.root.is_dir():
        return []
    for path in home.owned_paths():
        if path.is_dir() and not path.is_symlink():
            _remove_owned_dir(path)
        else:
            path.unlink(missing_ok=True)
    for leftover in home.root.glob(".*.*"):  # interrupted atomic writes: .NAME.RANDOM
        if leftover.is_file() and any(
            leftover.name.startswith(f".{p.name}.") for p in home.owned_paths()
        ):
            leftover.unlink(missing_ok=True)
    kept = sorted(p.name for p in home.root.iterdir())
    if not kept:
        home.root.rmdir()
    return kept


def _remove_owned_dir(directory: Path) -> None:
    """Remove a directory the agent made (TPM blobs), but never files it did not make."""
    for child in directory.iterdir():
        if child.is_file() and child.suffix in (".json", ".pem", ".bin", ".priv", ".pub"):
            child.unlink()
    if not any(directory.iterdir()):
        directory.rmdir()


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
