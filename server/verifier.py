"""The attestation pipeline: evidence in, decision and (only then) an access token out.

An ordered sequence of checks; each refusal is written to the audit log with its real cause
and answered to the network with a uniform problem. Step numbers follow DESIGN (attest).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from attest.errors import AlgorithmError, FormatError, SignatureError
from attest.evidence import EvidenceClaims, parse_evidence, verify_evidence_signature
from attest.jwk import load_public_jwk
from attest.keys import KeyClass
from attest.manifest import Manifest
from server.errors import (
    AccessDeniedError,
    AttestationRejectedError,
    BadRequestError,
    ConsentRequiredError,
    ProblemError,
)
from server.nonces import ChallengeNonces, IssuedNonce
from server.policy import Decision, Policy, PolicyInput
from server.signals import SignalValueError, check_signal_values
from server.store import AuditEvent, AuditRecord, DeviceRecord, NonceOutcome, Store
from server.tokens import IssuedToken, TokenIssuer, new_jti

MAX_CACHED_KEYS = 100_000  # loaded device keys kept per process (x, y -> key)
DeviceLookup = Callable[[str], Awaitable[DeviceRecord | None]]
"""The device row by id, as of a read that started after the call (``server.access``)."""

_REJECTED = "the evidence was not accepted; run 'envattest attest' again, and if this persists ask your administrator to check the audit log"  # noqa: E501


@dataclass(frozen=True)
class AttestationOutcome:
    """An allow decision and the token issued after the audit record was written."""

    decision: Decision
    token: IssuedToken
    device: DeviceRecord
    audit_seq: int


def device_binding(device_id: str) -> str:
    """What a nonce is bound to."""
    return f"device:{device_id}"


def store_lookup(store: Store) -> DeviceLookup:
    """Device rows read from ``store`` directly (for stores that live in memory)."""

    async def lookup(device_id: str) -> DeviceRecord | None:
        return store.get_device(device_id)

    return lookup


class Verifier:
    """Verifies evidence for enrolled devices against the manifest and the policy.

    ``challenge`` and ``attest`` run on the event loop: device rows come from ``devices``
    (per-process cache, revocation effective at once) and the spend is awaited on the group
    committer, so no request holds a thread. Refusals before the spend (steps 1-4) are
    audited through a worker thread: they are rare and must not stall the loop on a commit.
    """

    def __init__(
        self,
        *,
        store: Store,
        nonces: ChallengeNonces,
        issuer: TokenIssuer,
        manifest: Callable[[], Manifest],
        policy: Callable[[], Policy],
        nonce_ttl_s: int,
        max_iat_skew_s: int,
        devices: DeviceLookup | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._device = devices or store_lookup(store)
        self._keys: dict[tuple[str, str], ec.EllipticCurvePublicKey] = {}
        self.nonces = nonces
        self.issuer = issuer
        self._manifest = manifest
        self._policy = policy
        self.nonce_ttl_s = nonce_ttl_s
        self.max_iat_skew_s = max_iat_skew_s
        self._clock = clock

    async def challenge(self, device_id: str) -> IssuedNonce:
        """A nonce bound to an enrolled, active device. Nothing is stored (``server.nonces``),
        so anyone may ask for any device id without crowding out the device's own nonces;
        a refusal is not audited, so a flood does not write the audit log either."""
        device = await self._device(device_id)
        if device is None or not device.active:
            raise AttestationRejectedError(
                "this device is not enrolled or was revoked; run 'envattest init' to enroll",
                audit_detail=f"challenge for unknown or inactive device {device_id}",
            )
        return self.nonces.issue(
            device_binding(device_id), now=int(self._clock()), ttl_s=self.nonce_ttl_s
        )

    async def _reject(self, error: ProblemError, device_id: str | None, step: str) -> ProblemError:
        event = AuditEvent(
            "attest.rejected",
            device_id,
            "reject",
            {"step": step, "reason": error.audit_detail, "problem": error.slug},
        )
        await asyncio.get_running_loop().run_in_executor(None, self.store.append_audit, event)
        return error

    async def attest(self, body: bytes) -> AttestationOutcome:
        """Run every check in order; raise a ProblemError on the first refusal."""
        now = int(self._clock())
        # (1) parse at the boundary, keeping the exact signed bytes (DESIGN: attest)
        # (2) only ES256: none, HMAC, RSA are refused before any key is touched
        try:
            evidence = parse_evidence(body)
        except (FormatError, AlgorithmError) as exc:
            raise await self._reject(
                AttestationRejectedError(_REJECTED, audit_detail=f"parse: {exc}"), None, "parse"
            ) from exc
        # (3) a known device that is neither revoked nor erased
        device = await self._device(evidence.kid)
        if device is None or not device.active:
            state = "unknown" if device is None else "revoked or erased"
            raise await self._reject(
                AttestationRejectedError(_REJECTED, audit_detail=f"device {state}"),
                None if device is None else device.device_id,
                "device",
            )
        # (4) signature with the enrolled key, over the exact bytes received
        try:
            verified = verify_evidence_signature(evidence, expected_key=self._public_key(device))
        except SignatureError as exc:
            raise await self._reject(
                AttestationRejectedError(_REJECTED, audit_detail=f"signature: {exc}"),
                device.device_id,
                "signature",
            ) from exc
        claims = verified.claims
        # (5) nonce: exists, bound to this device, unexpired, spent atomically (single use).
        #     It is spent in step (10), in the same commit as the audit record of whatever
        #     steps (6)-(9) decide, so every spent nonce is audited and no write is wasted.
        binding = device_binding(device.device_id)
        manifest, skew = self._manifest(), now - claims.iat
        refusal = self._check_claims(claims, manifest=manifest, skew=skew)
        if refusal is not None:
            error, step = refusal
            await self._settle_or_reject(
                claims.nonce, binding, now, device,
                AuditEvent(
                    "attest.rejected",
                    device.device_id,
                    "reject",
                    {"step": step, "reason": error.audit_detail, "problem": error.slug},
                ),
            )  # fmt: skip
            raise error
        # (9) decision by policy
        decision = self._policy().evaluate(
            PolicyInput(
                device_id=device.device_id,
                key_class=KeyClass(device.key_class),
                clock_skew_s=skew,
                signals=claims.signals,
                consented=frozenset(claims.consent.fields),
                required=manifest.enforced_ids,
                iat=claims.iat,
            )
        )
        # (10) nonce spent and audit record committed together, before any token exists
        jti = new_jti() if decision.allow else None
        record = await self._settle_or_reject(
            claims.nonce, binding, now, device,
            AuditEvent(
                "attest",
                device.device_id,
                "allow" if decision.allow else "deny",
                self._audit_data(claims.to_json(), decision, device, skew, jti),
            ),
        )  # fmt: skip
        if not decision.allow:
            raise AccessDeniedError(
                "access denied by policy: " + "; ".join(decision.reasons),
                extra={"decision": "deny", "reasons": decision.reasons},
            )
        # (11) the token: ES256, bound to the device key by cnf.jkt
        token = self.issuer.issue(
            device_id=device.device_id,
            jkt=device.jkt,
            key_class=device.key_class,
            audience=decision.token.audience,
            ttl_s=decision.token.ttl_s,
            policy_version=decision.policy_version,
            jti=jti,
            binding=decision.token.binding.value,
        )
        return AttestationOutcome(decision, token, device, record.seq)

    def _public_key(self, device: DeviceRecord) -> ec.EllipticCurvePublicKey:
        """The device's enrolled key, loaded once per process for the same key material."""
        material = (device.public_jwk.get("x", ""), device.public_jwk.get("y", ""))
        key = self._keys.get(material)
        if key is None:
            if len(self._keys) >= MAX_CACHED_KEYS:
                self._keys.clear()
            key = self._keys[material] = load_public_jwk(device.public_jwk)
        return key

    async def _settle_or_reject(
        self, nonce: str, binding: str, now: int, device: DeviceRecord, event: AuditEvent
    ) -> AuditRecord:
        outcome, record = await self.nonces.spend_async(
            nonce, binding=binding, now=now, audit=event
        )
        if outcome is not NonceOutcome.CONSUMED or record is None:
            raise await self._reject(
                AttestationRejectedError(_REJECTED, audit_detail=f"nonce {outcome.value}"),
                device.device_id,
                "nonce",
            )
        return record

    def _check_claims(
        self, claims: EvidenceClaims, *, manifest: Manifest, skew: int
    ) -> tuple[ProblemError, str] | None:
        """Steps (6)-(8); returns the refusal and its step instead of raising, so that the
        nonce is still spent and the refusal audited in one commit."""
        # (6) iat within the skew bound (freshness itself comes from the nonce)
        if abs(skew) > self.max_iat_skew_s:
            direction = "behind" if skew > 0 else "ahead of"
            reason = (
                f"clock_skew (enforce): this machine's clock is {abs(skew)} s {direction} the "
                f"verifier's; the bound is {self.max_iat_skew_s} s. Synchronise the clock (NTP)"
            )
            denied = AccessDeniedError(
                "access denied: " + reason, extra={"decision": "deny", "reasons": [reason]}
            )
            return denied, "iat"
        # (7) consent names the current manifest
        if claims.consent.manifest_sha256 != manifest.sha256:
            stale = ConsentRequiredError(
                "consent required: the verifier's manifest changed; run 'envattest consent'",
                extra={"manifest_sha256": manifest.sha256},
            )
            return stale, "consent"
        # (8) every signal is a catalog field the user consented to, with its catalog type
        consented = frozenset(claims.consent.fields)
        outside = sorted((consented - manifest.field_ids) | (set(claims.signals) - consented))
        if outside:
            unconsented = ConsentRequiredError(
                "consent required: the evidence carries fields the consent does not "
                "cover; run 'envattest consent'",
                audit_detail=f"unconsented fields: {', '.join(outside)}",
            )
            return unconsented, "signals"
        try:
            check_signal_values(claims.signals)
        except SignalValueError as exc:
            return BadRequestError(f"malformed signal: {exc}"), "signals"
        return None

    @staticmethod
    def _audit_data(
        claims: dict[str, Any],
        decision: Decision,
        device: DeviceRecord,
        skew: int,
        jti: str | None,
    ) -> dict[str, Any]:
        return {
            "key_class": device.key_class,
            "policy_version": decision.policy_version,
            "results": [
                {"rule": r.rule, "mode": r.mode.value, "passed": r.passed, "reason": r.reason}
                for r in decision.results
            ],
            "signals": claims["signals"],
            "consent": claims["consent"],
            "nonce_sha256": hashlib.sha256(claims["eat_nonce"].encode()).hexdigest(),
            "iat": claims["iat"],
            "clock_skew_s": skew,
            "swversion": claims["swversion"],
            "jti": jti,
        }
