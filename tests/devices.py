"""Test devices that speak protocol v1 directly (for refusal vectors and benchmarks)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from attest.b64 import b64url_decode
from attest.evidence import ConsentClaim, EvidenceClaims, new_claims, sign_evidence
from attest.keys.software import SoftwareKey
from attest.manifest import Manifest, parse_manifest

EVIDENCE = {"Content-Type": "application/eat+jwt"}


@dataclass
class TestDevice:
    """An enrolled software-key device."""

    __test__ = False
    base_url: str
    device_id: str
    key: SoftwareKey
    manifest: Manifest

    @classmethod
    def enroll(cls, base_url: str, token: str, key_path: Path) -> TestDevice:
        """Create a key and enroll it with ``token`` (the key signs the enrollment challenge)."""
        key = SoftwareKey.create(key_path)
        answer = httpx.post(f"{base_url}/v1/enroll", json=enroll_body(base_url, token, key))
        answer.raise_for_status()
        manifest = parse_manifest(httpx.get(f"{base_url}/v1/manifest").content)
        return cls(base_url, answer.json()["device_id"], key, manifest)

    def challenge(self, device_id: str | None = None) -> str:
        """A fresh nonce for this (or another) device."""
        answer = httpx.post(
            f"{self.base_url}/v1/challenge", json={"device_id": device_id or self.device_id}
        )
        answer.raise_for_status()
        nonce: str = answer.json()["nonce"]
        return nonce

    def consent(self, fields: tuple[str, ...] | None = None) -> ConsentClaim:
        """Consent to the current manifest (all fields by default)."""
        chosen = fields if fields is not None else tuple(sorted(self.manifest.field_ids))
        return ConsentClaim(self.manifest.sha256, int(time.time()), chosen)  # type: ignore[arg-type]

    def claims(
        self,
        nonce: str,
        *,
        signals: dict[str, Any] | None = None,
        consent: ConsentClaim | None = None,
        iat: int | None = None,
    ) -> EvidenceClaims:
        """Claims with plausible signals for every requested field."""
        return new_claims(
            nonce=nonce,
            device_id=self.device_id,
            consent=consent or self.consent(),
            signals=signals if signals is not None else default_signals(self.manifest),
            now=iat if iat is not None else int(time.time()),
        )

    def evidence(self, nonce: str | None = None, **kwargs: Any) -> str:
        """Signed evidence over a fresh (or given) nonce."""
        return sign_evidence(self.claims(nonce or self.challenge(), **kwargs), self.key.sign)

    def attest(self, evidence: str | bytes) -> httpx.Response:
        """POST /v1/attest."""
        body = evidence.encode() if isinstance(evidence, str) else evidence
        return httpx.post(f"{self.base_url}/v1/attest", content=body, headers=EVIDENCE)


def enrollment_nonce(base_url: str, token: str) -> str:
    """POST /v1/enroll/challenge for ``token``."""
    answer = httpx.post(f"{base_url}/v1/enroll/challenge", json={"enrollment_token": token})
    answer.raise_for_status()
    nonce: str = answer.json()["nonce"]
    return nonce


def enroll_body(
    base_url: str, token: str, key: SoftwareKey, *, nonce: str | None = None
) -> dict[str, Any]:
    """A ``none`` enrollment body whose key signs a fresh (or the given) challenge."""
    nonce = nonce or enrollment_nonce(base_url, token)
    return {
        "enrollment_token": token,
        "public_jwk": key.public_jwk(),
        "key_attestation": key.attestation(b64url_decode(nonce)),
        "nonce": nonce,
    }


def default_signals(manifest: Manifest) -> dict[str, Any]:
    """The catalog example value of every field the manifest requests."""
    return {r.field.id: r.field.example for r in manifest.fields}
