"""One attestation: challenge, collect the consented fields, sign once, submit, record.

The exact claims sent are appended to the local log before the request leaves, so the user
can always see what was sent, even if the answer never arrives.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.client import Granted, VerifierClient
from agent.collectors import CollectionContext, collect_signals
from agent.consent import require_consent
from agent.errors import AccessDeniedError, ConsentRequiredError, DeviceInactiveError
from agent.home import AgentHome, ConsentRecord
from attest.evidence import ConsentClaim, EvidenceClaims, new_claims, sign_evidence
from attest.keys import KeyProvider

PREVIEW_NONCE = "<nonce chosen by the verifier>"


@dataclass(frozen=True)
class AttestResult:
    """An allow decision and its token."""

    granted: Granted
    claims: dict[str, Any]


def consent_claim(record: ConsentRecord) -> ConsentClaim:
    """The consent claim carried in every piece of evidence."""
    return ConsentClaim(
        manifest_sha256=record.manifest_sha256,
        granted_at=record.granted_at,
        fields=tuple(record.fields),  # type: ignore[arg-type]
    )


def build_claims(
    *,
    device_id: str,
    consent: ConsentRecord,
    ctx: CollectionContext,
    nonce: str,
    now: int,
) -> EvidenceClaims:
    """Collect exactly the consented fields and wrap them as claims."""
    signals: Mapping[str, object] = {
        str(k): v for k, v in collect_signals(ctx, consent.fields).items()
    }
    return new_claims(
        nonce=nonce,
        device_id=device_id,
        consent=consent_claim(consent),
        signals=signals,
        now=now,
    )


def attest_once(
    *,
    home: AgentHome,
    client: VerifierClient,
    key: KeyProvider,
    ctx: CollectionContext,
    clock: Callable[[], float] = time.time,
) -> AttestResult:
    """Run one attestation; caches the token on allow, drops it on refusal."""
    enrollment = home.enrollment()
    consent = require_consent(home.consent())
    try:
        nonce = client.challenge(enrollment.device_id)
    except DeviceInactiveError as exc:
        home.mark_inactive(str(exc), at=int(clock()))
        raise
    claims = build_claims(
        device_id=enrollment.device_id, consent=consent, ctx=ctx, nonce=nonce, now=int(clock())
    )
    evidence = sign_evidence(claims, key.sign)
    entry = {"at": int(clock()), "server": enrollment.server, "claims": claims.to_json()}
    home.append_log({**entry, "event": "sent"})
    try:
        granted = client.attest(evidence)
    except AccessDeniedError as exc:
        home.drop_token()
        home.append_log({"at": int(clock()), "event": "denied", "reasons": exc.reasons})
        raise
    except ConsentRequiredError:
        home.drop_token()
        home.append_log({"at": int(clock()), "event": "consent-required"})
        raise
    home.save_token(granted.access_token, int(clock()) + granted.expires_in)
    home.append_log({"at": int(clock()), "event": "allowed", "expires_in": granted.expires_in})
    return AttestResult(granted=granted, claims=claims.to_json())
