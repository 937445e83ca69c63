"""Access-token checks for relying parties: forward auth and introspection (RFC 7662).

Unlike a gateway checking the JWT offline with the JWKS, these see revocation at once (the
device row is cached under the revocation epoch, ``server.access.rowcache``), check a DPoP
proof on every request for a DPoP-bound token, and observe usage. The hot path runs on the
event loop: database work goes to dedicated threads in batches, and only a DPoP proof id is
written (one batched INSERT, in the same database round as the revocation-epoch read).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from attest.dpop import (
    DEFAULT_LEEWAY,
    DpopNonceRequiredError,
    DpopProofError,
    VerifiedProof,
    verify_proof,
)
from attest.errors import AttestError
from server.access.proofs import (
    DpopNonces,
    OriginalRequestError,
    ProofReplayStore,
    RequestTarget,
)
from server.access.rowcache import RowCache
from server.errors import UnauthorizedError
from server.policy import Policy
from server.store import DeviceRecord
from server.tokens import DPOP, TokenIssuer, token_type

BEARER_CHALLENGE = 'Bearer realm="envattest", error="invalid_token"'
DPOP_CHALLENGE = 'DPoP realm="envattest", algs="ES256", error="invalid_token"'
NONCE_CHALLENGE = 'DPoP realm="envattest", algs="ES256", error="use_dpop_nonce"'
_INVALID = (
    "no valid envattest access token: run 'envattest token' (or let your tool's credential "
    "helper do it) and send it as Authorization: Bearer or X-Api-Key; a DPoP-bound token "
    "needs 'envattest proxy' (or 'envattest exec --via-proxy')"
)
MAX_TOKEN_CHARS = 4096


class InactiveTokenError(UnauthorizedError):
    """The token is not accepted; ``step`` names the check that refused (metrics, logs)."""

    def __init__(self, step: str, reason: str, *, challenge: str = BEARER_CHALLENGE) -> None:
        super().__init__(_INVALID, audit_detail=reason, headers={"WWW-Authenticate": challenge})
        self.step = step
        self.reason = reason


class DpopNonceError(InactiveTokenError):
    """The proof must carry the server's current nonce, sent in ``DPoP-Nonce``."""

    def __init__(self, nonce: str) -> None:
        super().__init__("dpop.nonce", "use_dpop_nonce", challenge=NONCE_CHALLENGE)
        self.headers["DPoP-Nonce"] = nonce
        self.detail = "retry with a DPoP proof carrying the nonce in the DPoP-Nonce header"


@dataclass(frozen=True)
class Presented:
    """The credential as the client presented it: scheme, token and (for DPoP) the proof."""

    scheme: str  # "bearer" | "dpop"
    token: str
    proof: str | None


def presented_credential(
    authorization: str | None, api_key: str | None, dpop_headers: list[str]
) -> Presented:
    """``Authorization: DPoP`` + ``DPoP`` proof, or ``Bearer`` / ``X-Api-Key``."""
    if len(dpop_headers) > 1:
        raise InactiveTokenError("dpop.format", "more than one DPoP header")
    proof = dpop_headers[0].strip() if dpop_headers else None
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() in ("bearer", "dpop") and value.strip():
            return Presented(scheme.lower(), value.strip(), proof)
    return Presented("bearer", (api_key or "").strip(), proof)


def bearer_token(authorization: str | None, api_key: str | None) -> str:
    """The token from ``Authorization: Bearer`` or ``X-Api-Key`` (Claude Code sends both)."""
    presented = presented_credential(authorization, api_key, [])
    return presented.token if presented.scheme == "bearer" else ""


@dataclass(frozen=True)
class ActiveToken:
    """A token that passed every check, with the device it names (active right now)."""

    claims: dict[str, Any]
    device: DeviceRecord

    def introspection(self) -> dict[str, Any]:
        """The RFC 7662 answer for an active token."""
        c = self.claims
        answer = {"active": True, "token_type": token_type(c)}
        for name in ("sub", "exp", "iat", "nbf", "aud", "iss", "jti", "cnf", "assurance"):
            if name in c:
                answer[name] = c[name]
        answer["key_class"] = self.device.key_class
        answer["policy_version"] = c.get("policy_version")
        return answer


StrictCheck = Callable[[str, str, int], Any]


class TokenChecker:
    """The ordered checks for one presented token; raises ``InactiveTokenError``."""

    def __init__(
        self,
        *,
        issuer: TokenIssuer,
        rows: RowCache,
        replay: ProofReplayStore,
        nonces: DpopNonces,
        policy: Callable[[], Policy],
        audience: str,
        dpop_max_age_s: int,
        strict: StrictCheck | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuer = issuer
        self._rows = rows
        self._replay = replay
        self._nonces = nonces
        self._policy = policy
        self.audience = audience
        self._max_age = dpop_max_age_s
        self._strict = strict
        self._clock = clock

    async def check(
        self,
        presented: Presented,
        *,
        target: Callable[[], RequestTarget] | None,
        requested_audience: str | None = None,
        epoch: int | None = None,
    ) -> ActiveToken:
        """Verify the token and, when bound or presented as DPoP, its proof for ``target``;
        ``epoch``: the revocation epoch this request already read (``RowCache.epoch``).

        The proof is verified before the database round, so its id is spent in the same
        round as the epoch read; refusals are still reported in the order of the steps."""
        claims = self._claims(presented.token, requested_audience)
        proof: VerifiedProof | None = None
        refusal: InactiveTokenError | None = None
        if presented.scheme == "dpop":
            try:
                proof = self._verify_proof(presented, claims, target)
            except InactiveTokenError as exc:
                refusal = exc
        fresh = True
        if proof is not None:
            # (8) the proof id is new to every replica within the iat window (section 11.1),
            #     spent in the round that also reads the revocation epoch for step (4)
            expires_at = proof.iat + self._max_age + DEFAULT_LEEWAY + 1
            epoch, fresh = await self._replay.spend(
                jkt=proof.jkt, jti=proof.jti, expires_at=expires_at
            )
        active = await self._device_checks(claims, epoch)
        # (7) possession, per request (RFC 9449 section 7): a DPoP-bound token only with a proof
        if claims.get("binding") == DPOP and presented.scheme != "dpop":
            raise InactiveTokenError(
                "dpop.scheme", "DPoP-bound token presented as bearer", challenge=DPOP_CHALLENGE
            )
        if refusal is not None:
            raise refusal
        if not fresh:
            raise InactiveTokenError(
                "dpop.replay", "DPoP proof jti already used", challenge=DPOP_CHALLENGE
            )
        return active

    async def status(self, token: str) -> ActiveToken:
        """Steps (1)-(6) only, for the token's holder asking whether it is still good: the
        answer grants nothing, so no proof of possession is needed."""
        return await self._device_checks(self._claims(token, None), None)

    def _claims(self, token: str, requested_audience: str | None) -> dict[str, Any]:
        # (1) a token, bounded in size
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise InactiveTokenError("token", "missing or oversized token")
        # (2) ES256 by a published key, exp / iat / iss, and aud: the configured forward-auth
        #     audience always wins over anything in the request (DESIGN: access token)
        try:
            claims = self._issuer.verify(
                token, audience=self.audience or requested_audience or None
            )
        except AttestError as exc:
            raise InactiveTokenError("token", f"{exc.__class__.__name__}: {exc}") from exc
        # (3) lifetime within the policy's maximum, so a token minted longer is refused
        ttl = int(claims["exp"]) - int(claims["iat"])
        limit = self._policy().token.ttl_s
        if ttl > limit:
            raise InactiveTokenError("token.lifetime", f"lifetime {ttl} s exceeds {limit} s")
        return claims

    async def _device_checks(self, claims: dict[str, Any], epoch: int | None) -> ActiveToken:
        # (4) the device exists and is neither revoked nor erased as of a read that started
        #     after this request arrived (revocation at once, every replica)
        device = await self._rows.device(str(claims["sub"]), epoch=epoch)
        if device is None or not device.active:
            raise InactiveTokenError("device", "device unknown, revoked or erased")
        # (5) the token is bound to the device key it was issued for (cnf.jkt)
        cnf = claims.get("cnf")
        if not isinstance(cnf, dict) or cnf.get("jkt") != device.jkt:
            raise InactiveTokenError("cnf", "cnf.jkt does not match the enrolled device key")
        # (6) strict mode: the token id is one an audited allow decision named
        if self._strict is not None and not await self._strict(
            device.device_id, str(claims["jti"]), int(claims["iat"])
        ):
            raise InactiveTokenError("token.audit", "no audited allow names this token id")
        return ActiveToken(claims, device)

    def _verify_proof(
        self,
        presented: Presented,
        claims: dict[str, Any],
        target: Callable[[], RequestTarget] | None,
    ) -> VerifiedProof:
        # (7) the proof covers this request and is signed by the key cnf.jkt names (RFC 9449
        #     section 4.3); step (5) then ties cnf.jkt to the enrolled device key
        if presented.proof is None:
            raise InactiveTokenError("dpop.proof", "no DPoP proof", challenge=DPOP_CHALLENGE)
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        if not isinstance(jkt, str):
            raise InactiveTokenError("cnf", "the token has no cnf.jkt to check a proof against")
        if target is None:
            raise InactiveTokenError("dpop.target", "no request to check the proof against")
        try:
            request = target()
        except OriginalRequestError as exc:
            raise InactiveTokenError(
                "dpop.target", f"{exc}: {exc.fix}", challenge=DPOP_CHALLENGE
            ) from exc
        try:
            return verify_proof(
                presented.proof,
                expected_htm=request.htm,
                expected_htu=request.htu,
                expected_jkt=jkt,
                access_token=presented.token,
                now=self._clock(),
                max_age=self._max_age,
                accepted_nonces=self._nonces.accepted() if self._nonces.enabled else None,
            )
        except DpopNonceRequiredError as exc:
            raise DpopNonceError(self._nonces.current()) from exc
        except DpopProofError as exc:
            raise InactiveTokenError(exc.step, str(exc), challenge=DPOP_CHALLENGE) from exc
