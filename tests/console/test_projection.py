"""The fleet projection against a real SQLite database: its figures equal what the audit log
says, erasure removes a device's values, and alerts are raised once for the right changes."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from server.alerts.detect import AlertKind
from server.console.evidence import evidence_changes
from server.console.projection import FleetBatch
from server.store import AuditEvent, AuditRecord
from server.store.alerts import AlertStore
from server.store.fleet import FleetProjection
from server.store.fleet_queries import FleetQueries
from server.store.migrate import upgrade
from server.store.sql import SqlStore, make_engine
from tests.console.fleet import FleetSpec, seed_fleet

NOW = 1_790_000_000


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    return engine


def _catch_up(projection: FleetProjection) -> None:
    while projection.catch_up(now=NOW, limit=700):
        pass


def _latest_attests(engine: Engine) -> dict[str, tuple[str, dict[str, Any]]]:
    """Straight from the audit log: each device's latest attestation (decision, data)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT device_id, decision, data FROM audit_log WHERE seq IN "
                "(SELECT max(seq) FROM audit_log WHERE event = 'attest' GROUP BY device_id)"
            )
        ).all()
    return {r.device_id: (r.decision, json.loads(r.data)) for r in rows}


def test_figures_equal_the_audit_log(engine: Engine) -> None:
    seed_fleet(engine, FleetSpec(devices=240, attestations_per_device=4, start_at=NOW - 10_000))
    projection = FleetProjection(engine)
    _catch_up(projection)
    latest = _latest_attests(engine)
    queries = FleetQueries(engine)
    overview = queries.overview(fresh_since=0, days_since=0)
    assert overview.by_last_decision == dict(Counter(d for d, _ in latest.values()))
    with engine.connect() as conn:
        per_day = conn.execute(
            text("SELECT count(*) FROM audit_log WHERE event IN ('attest', 'attest.rejected')")
        ).scalar_one()
    assert sum(n for _, _, n in overview.daily) == per_day
    zones = Counter(data["signals"]["timezone.iana"] for _, data in latest.values())
    shown = {v: n for v, _, n in queries.value_counts(top=100)["timezone.iana"]}
    assert shown == dict(zones)
    relays = Counter(
        (item["host"], item["classification"])
        for _, data in latest.values()
        for item in data["signals"]["baseurl.tools"]
    )
    shown_hosts = {(v, d): n for v, d, n in queries.value_counts(top=100)["baseurl.tools"]}
    assert shown_hosts == dict(relays)
    assert projection.lag() == 0


def test_erasure_removes_a_devices_values(engine: Engine) -> None:
    seed_fleet(engine, FleetSpec(devices=5, attestations_per_device=1, start_at=NOW - 10_000))
    projection = FleetProjection(engine)
    _catch_up(projection)
    before = sum(n for _, _, n in FleetQueries(engine).value_counts()["timezone.iana"])
    SqlStore(engine).append_audit(AuditEvent("device.erased", "dev-0000002", None, {}))
    _catch_up(projection)
    after = FleetQueries(engine).value_counts()["timezone.iana"]
    assert sum(n for _, _, n in after) == before - 1
    with engine.connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM fleet_values WHERE device_id = 'dev-0000002'")
        ).scalar_one()
    assert left == 0


def _attest(store: SqlStore, decision: str, zone: str, host: str, cls: str) -> None:
    signals = {
        "timezone.iana": zone,
        "baseurl.tools": [
            {
                "source": "claude-code:user",
                "provider": "anthropic",
                "scheme": "https",
                "host": host,
                "port": None,
                "classification": cls,
            }
        ],
    }
    results = [{"rule": "base_url", "mode": "enforce", "passed": decision == "allow", "reason": ""}]
    store.append_audit(
        AuditEvent("attest", "d1", decision, {"signals": signals, "results": results})
    )


def test_alerts_for_changes_and_a_deny_after_allows_raised_once(engine: Engine) -> None:
    store = SqlStore(engine)
    for _ in range(3):
        _attest(store, "allow", "Europe/Berlin", "api.anthropic.com", "official")
    _attest(store, "deny", "Asia/Shanghai", "relay.example", "custom")
    _attest(store, "deny", "Asia/Shanghai", "relay.example", "custom")  # no change: no alert
    projections = [FleetProjection(engine, alert_targets=lambda: ("hook",)) for _ in range(2)]
    threads = [threading.Thread(target=_catch_up, args=(p,)) for p in projections]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    alerts = AlertStore(engine).recent()
    kinds = sorted(a.kind for a in alerts)
    assert kinds == sorted(
        [AlertKind.DENY_AFTER_ALLOWS, AlertKind.TIMEZONE_CHANGE, AlertKind.BASEURL_CLASS_CHANGE]
    )
    assert all(a.state == "pending" and a.target == "hook" for a in alerts)
    change = next(a for a in alerts if a.kind == AlertKind.BASEURL_CLASS_CHANGE)
    assert "changed from official api.anthropic.com to custom relay.example" in change.summary
    deny = next(a for a in alerts if a.kind == AlertKind.DENY_AFTER_ALLOWS)
    assert "after 3 allows" in deny.summary


def test_a_deny_after_fewer_allows_than_the_run_raises_nothing(engine: Engine) -> None:
    store = SqlStore(engine)
    _attest(store, "allow", "UTC", "api.anthropic.com", "official")
    _attest(store, "deny", "UTC", "api.anthropic.com", "official")
    _catch_up(FleetProjection(engine, alert_targets=lambda: ("hook",), allow_run=2))
    assert AlertStore(engine).recent() == []


def test_usage_rule_events_raise_an_alert(engine: Engine) -> None:
    store = SqlStore(engine)
    store.append_audit(
        AuditEvent(
            "usage.denied",
            "d9",
            "deny",
            {"rule": "distinct_networks", "mode": "enforce", "reason": "3 networks for one token"},
        )
    )
    _catch_up(FleetProjection(engine, alert_targets=lambda: ()))
    (alert,) = AlertStore(engine).recent()
    assert alert.kind == AlertKind.USAGE_RULE
    assert "usage rule distinct_networks (enforce) fired for device d9" in alert.summary
    assert alert.state is None  # no webhook configured: recorded only


def test_evidence_changes_read_as_sentences() -> None:
    before = {
        "timezone.iana": "Europe/Berlin",
        "proxy.tunnels": [],
        "baseurl.tools": [
            {
                "source": "codex:user",
                "provider": "openai",
                "host": "api.openai.com",
                "classification": "official",
            }
        ],
    }
    after = {
        "timezone.iana": "UTC",
        "proxy.tunnels": [{"name": "wg0", "kind": "wireguard"}],
        "baseurl.tools": [
            # the agent's classification is display-only: the verifier's says custom
            {
                "source": "codex:user",
                "provider": "openai",
                "host": "relay.example",
                "classification": "official",
            }
        ],
    }
    assert evidence_changes(before, after) == [
        "time zone changed from Europe/Berlin to UTC",
        "base URL for codex:user changed from official api.openai.com to custom relay.example",
        "proxy.tunnels: added wireguard",
    ]


def test_device_tallies_follow_enrollment_revocation_and_erasure(engine: Engine) -> None:
    seed_fleet(engine, FleetSpec(devices=50, attestations_per_device=2, start_at=NOW - 10_000))
    store = SqlStore(engine)
    store.set_device_state("dev-0000003", revoked_at=NOW)
    store.append_audit(AuditEvent("admin.device.revoke", "dev-0000003", None, {}))
    store.erase_device("dev-0000004", now=NOW)
    store.append_audit(AuditEvent("device.erased", "dev-0000004", None, {}))
    _catch_up(FleetProjection(engine))
    with engine.connect() as conn:
        truth = {
            (k, s): n
            for k, s, n in conn.execute(
                text(
                    "SELECT key_class, CASE WHEN erased_at IS NOT NULL THEN 'erased' "
                    "WHEN revoked_at IS NOT NULL THEN 'revoked' ELSE 'active' END, count(*) "
                    "FROM devices GROUP BY 1, 2"
                )
            )
        }
    overview = FleetQueries(engine).overview(fresh_since=0, days_since=0)
    assert overview.by_key_class == truth
    assert overview.active == sum(n for (_, s), n in truth.items() if s == "active")


def test_a_projector_overtaken_between_read_and_write_applies_nothing_twice(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # records are applied in memory outside the write lock; the write checks the cursor
    store = SqlStore(engine)
    for _ in range(3):
        _attest(store, "allow", "Europe/Berlin", "api.anthropic.com", "official")
    _attest(store, "deny", "Asia/Shanghai", "relay.example", "custom")
    slow, fast = FleetProjection(engine), FleetProjection(engine)
    load = FleetProjection._load
    overtaken = []

    def load_then_lose_the_race(conn: Any, devices: Any) -> Any:
        loaded = load(conn, devices)
        if not overtaken:
            overtaken.append(fast.catch_up(now=NOW))  # another replica applies them all
        return loaded

    monkeypatch.setattr(slow, "_load", load_then_lose_the_race)
    assert slow.catch_up(now=NOW) == 0  # read again after the race: nothing left
    assert overtaken == [4]
    overview = FleetQueries(engine).overview(fresh_since=0, days_since=0)
    assert overview.by_last_decision == {"deny": 1}
    with engine.connect() as conn:
        attestations = conn.execute(text("SELECT attestations FROM fleet_devices")).scalar()
    assert attestations == 4  # not 8


def test_a_run_applied_at_once_equals_the_records_applied_one_by_one() -> None:
    # apply_all computes a device's value set only from its last attestation in the run
    def record(seq: int, device: str, event: str, decision: str | None, zone: str) -> AuditRecord:
        signals = {
            "timezone.iana": zone,
            "baseurl.tools": [
                {"source": "claude-code:user", "provider": "anthropic", "scheme": "https",
                 "host": f"{zone.lower()}.example", "port": None, "classification": "custom"}
            ],
        }  # fmt: skip
        data = {"signals": signals, "key_class": "software"} if event == "attest" else {}
        return AuditRecord(seq, NOW + seq, event, device, decision, data, "", "", "")

    run = [
        record(1, "d1", "attest", "allow", "Europe/Berlin"),
        record(2, "d2", "attest", "allow", "Asia/Tokyo"),
        record(3, "d1", "attest", "deny", "Europe/Paris"),
        record(4, "d2", "admin.device.erase", None, ""),
        record(5, "d1", "attest", "allow", "Europe/Rome"),
        record(6, "d2", "attest", "allow", "America/Lima"),
        record(7, "d3", "attest", "allow", "Africa/Lagos"),
    ]
    at_once, one_by_one = (FleetBatch({}, {}, {}, allow_run=1) for _ in range(2))
    at_once.apply_all(run)
    for r in run:
        one_by_one.apply(r)
    for name in ("values", "states", "tallies", "daily", "reasons", "alerts"):
        assert getattr(at_once, name) == getattr(one_by_one, name), name
    assert +at_once.counts == +one_by_one.counts  # zero counts are never written
    assert at_once.values["d1"] == one_by_one.values["d1"]
    assert any(v == "Europe/Rome" for _, v, _ in at_once.values["d1"])
