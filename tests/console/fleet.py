"""A seeded fleet written straight into a verifier's database: devices and a valid audit
chain of enrollments and attestations shaped exactly like the verifier's records, in bulk
(one transaction per batch), so 100k devices take seconds rather than hours of protocol."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, insert, select

from server.audit import GENESIS_HASH, chain_hash, data_digest, serialize_data
from server.store.schema import audit_log, devices

ZONES = (
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Europe/London",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Australia/Sydney",
    "UTC",
)
RELAYS = ("relay.example", "gw.relay.example.net", "proxy-ai.example.org")
PROXIES = ("proxy.corp.example", "squid.example.net")
KEY_CLASSES = (("software", 0.7), ("tpm2", 0.2), ("hardware-unverified", 0.1))
MANIFESTS = ("a" * 64, "b" * 64)


@dataclass
class FleetSpec:
    """What to generate."""

    devices: int
    attestations_per_device: int = 1
    seed: int = 7
    start_at: int = 1_780_000_000
    span_s: int = 20 * 86_400
    id_prefix: str = "dev"
    # a device whose time zone is this text (HTML/script) to prove escaping
    hostile_value: str | None = None


@dataclass
class SeededFleet:
    """What was written (figures the console must show)."""

    devices: int = 0
    attestations: int = 0
    by_key_class: dict[str, int] = field(default_factory=dict)
    device_ids: list[str] = field(default_factory=list)


def _signals(spec: FleetSpec, index: int, round_: int) -> dict[str, Any]:
    # few distinct combinations (zone, relay, proxy, tunnel), so serialized data is shared
    z = (index + (round_ if index % 17 == 0 else 0)) % len(ZONES)
    zone = spec.hostile_value if spec.hostile_value is not None and index == 0 else ZONES[z]
    relay = index % 9 == 0 and round_ > 0
    tools = [
        {
            "source": "claude-code:user",
            "provider": "anthropic",
            "scheme": "https",
            "host": RELAYS[index % len(RELAYS)] if relay else "api.anthropic.com",
            "port": 8443 if relay else None,
            "classification": "custom" if relay else "official",
        }
    ]
    return {
        "timezone.iana": zone,
        "timezone.source": "tzlocal",
        "timezone.utc_offset_minutes": 60 * (z - 3),
        "timezone.dst": z % 2 == 0,
        "baseurl.env": [],
        "baseurl.tools": tools,
        "proxy.env": [
            {
                "source": "env:HTTPS_PROXY",
                "scheme": "http",
                "host": PROXIES[z % 2],
                "port": 3128,
                "has_credentials": False,
            }
        ]
        if index % 5 == 0
        else [],
        "proxy.tunnels": [{"name": "wg0", "kind": "wireguard"}] if index % 7 == 0 else [],
    }


def _attest_data(
    signals: dict[str, Any], key_class: str, deny: bool, second_manifest: bool
) -> dict[str, Any]:
    results = [
        {"rule": "key_class", "mode": "enforce", "passed": True, "reason": "ok"},
        {
            "rule": "base_url",
            "mode": "enforce",
            "passed": not deny,
            "reason": "custom base URL" if deny else "official endpoints only",
        },
    ]
    # iat, nonce and jti are the same for equal data: the console shows none of them
    return {
        "key_class": key_class,
        "policy_version": "seeded-1",
        "results": results,
        "signals": signals,
        "consent": {
            "manifest_sha256": MANIFESTS[second_manifest],
            "granted_at": 1_780_000_000,
            "fields": sorted(signals),
        },
        "nonce_sha256": "0" * 64,
        "iat": 1_780_000_000,
        "clock_skew_s": 0,
        "swversion": "0.1.0",
        "jti": None if deny else "seeded",
    }


class _DataCache:
    """Serialized audit data and its digest, shared by records with equal data (speed)."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[str, str]] = {}

    def get(self, data: dict[str, Any]) -> tuple[str, str]:
        key = repr(data)
        found = self._cache.get(key)
        if found is None:
            text = serialize_data(data)
            found = self._cache[key] = (text, data_digest(text))
        return found


class _Chain:
    def __init__(self, engine: Engine) -> None:
        with engine.connect() as conn:
            head = conn.execute(
                select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
            ).first()
        self.seq, self.prev = (head.seq, head.hash) if head else (0, GENESIS_HASH)
        self.data = _DataCache()

    def row(
        self, at: int, event: str, device: str | None, decision: str | None, data: dict[str, Any]
    ) -> dict[str, Any]:
        self.seq += 1
        text, digest = self.data.get(data)
        h = chain_hash(
            prev_hash=self.prev,
            seq=self.seq,
            at=at,
            event=event,
            device_id=device,
            decision=decision,
            data_sha256=digest,
        )
        row = {
            "seq": self.seq,
            "at": at,
            "event": event,
            "device_id": device,
            "decision": decision,
            "data": text,
            "data_sha256": digest,
            "prev_hash": self.prev,
            "hash": h,
        }
        self.prev = h
        return row


def seed_fleet(engine: Engine, spec: FleetSpec, *, batch: int = 5000) -> SeededFleet:
    """Append ``spec.devices`` devices with their enrollments and attestations."""
    rng = random.Random(spec.seed)
    chain = _Chain(engine)
    out = SeededFleet()
    for chunk in _chunks(range(spec.devices), batch):
        device_rows, audit_rows = [], []
        for i in chunk:
            device_id = f"{spec.id_prefix}-{i:07d}"
            key_class = rng.choices([k for k, _ in KEY_CLASSES], [w for _, w in KEY_CLASSES])[0]
            enrolled = spec.start_at + (i * spec.span_s // max(1, spec.devices)) // 4
            jkt = hashlib.sha256(device_id.encode()).hexdigest()[:43]
            revoked = spec.start_at + spec.span_s if i % 50 == 49 else None  # after attesting
            device_rows.append(
                {
                    "device_id": device_id,
                    "public_jwk": "{}",
                    "jkt": jkt,
                    "key_class": key_class,
                    "enrolled_at": enrolled,
                    "revoked_at": revoked,
                    "erased_at": None,
                }
            )
            proof = (
                {"format": "tpm2", "ek_issuer": "CN=Test EK CA"}
                if key_class == "tpm2"
                else {"format": "none"}
            )
            audit_rows.append(
                chain.row(
                    enrolled,
                    "enroll",
                    device_id,
                    "allow",
                    {"key_class": key_class, "jkt": jkt, "proof": proof},
                )
            )
            for r in range(spec.attestations_per_device):
                # spread over the rest of the span: the last one lands before start + span
                step = (spec.span_s * 3 // 4 - 4200) // max(1, spec.attestations_per_device)
                at = enrolled + 3600 + r * step + rng.randrange(600)
                signals = _signals(spec, i, r)
                deny = signals["baseurl.tools"][0]["classification"] == "custom"
                data = _attest_data(signals, key_class, deny, (i + r) % 7 == 0)
                audit_rows.append(
                    chain.row(at, "attest", device_id, "deny" if deny else "allow", data)
                )
                out.attestations += 1
                if r == 0 and i % 23 == 0:
                    audit_rows.append(
                        chain.row(
                            at + 5,
                            "attest.rejected",
                            device_id,
                            "reject",
                            {
                                "step": "nonce",
                                "reason": "nonce already-used",
                                "problem": "attestation-rejected",
                            },
                        )
                    )
            if revoked is not None:  # as 'envattest-server devices revoke' records it
                audit_rows.append(
                    chain.row(
                        revoked, "admin.device.revoke", device_id, None, {"already_revoked": False}
                    )
                )
            out.by_key_class[key_class] = out.by_key_class.get(key_class, 0) + (revoked is None)
            out.device_ids.append(device_id)
        with engine.begin() as conn:
            conn.execute(insert(devices), device_rows)
            conn.execute(insert(audit_log), audit_rows)
        out.devices += len(device_rows)
    return out


def _chunks(items: range, size: int) -> Iterator[range]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def dumps(doc: Any) -> str:
    """Compact JSON (for assertions)."""
    return json.dumps(doc, sort_keys=True)
