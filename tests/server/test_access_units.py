"""The relying-party building blocks in process: batching, the revocation-epoch row cache,
the replay store, server nonces, the original request, client networks, usage aggregation and
the usage and binding policy settings."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from attest.manifest import parse_manifest, render_manifest
from server.access.batch import Batcher
from server.access.proofs import (
    DpopNonces,
    OriginalRequestError,
    ProofReplayStore,
    original_request,
)
from server.access.rowcache import RowCache
from server.datadir import init_data_dir
from server.errors import ConfigError, UnavailableError
from server.policy import PolicySchemaError, RuleMode, parse_policy
from server.policy.model import TokenBinding
from server.policy.usage import ObservedUsage, UsageRule
from server.store import AuditEvent, DeviceRecord
from server.store.access import AccessRound
from server.store.sql import SqlStore, make_engine
from server.tokens import KeyRing
from server.usage.fields import check_usage_disclosed
from server.usage.networks import client_network
from server.usage.observer import UsageObserver
from server.usage.store import UsageTotals

POLICY = """
[policy]
version = "t1"
[token]
binding = "{binding}"
[rules.key_class]
allowed = ["software"]
{usage}
"""


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    config = init_data_dir(tmp_path / "d", issuer="t")
    return SqlStore(make_engine(config.resolved_database_url))


def _device(device_id: str) -> DeviceRecord:
    return DeviceRecord(device_id, {"kty": "EC"}, "jkt-" + device_id, "software", 1)


def test_batcher_runs_calls_made_during_a_batch_in_the_next_one() -> None:
    release = threading.Event()
    batches: list[list[int]] = []

    def run(items: Sequence[int]) -> list[int]:
        if not batches:
            release.wait(5)
        batches.append(list(items))
        return [i * 10 for i in items]

    async def main() -> list[int]:
        batcher: Batcher[int, int] = Batcher(run, name="t")
        first = asyncio.ensure_future(batcher.submit(1))
        await asyncio.sleep(0.05)
        later = [asyncio.ensure_future(batcher.submit(i)) for i in (2, 3, 4)]
        await asyncio.sleep(0.05)
        release.set()
        results = [await first] + [await f for f in later]
        batcher.close()
        return results

    assert asyncio.run(main()) == [10, 20, 30, 40]
    assert batches == [[1], [2, 3, 4]]


def test_batcher_errors_reach_every_caller() -> None:
    def fail(items: Sequence[int]) -> list[int]:
        raise ConfigError("database gone")

    async def main() -> None:
        batcher: Batcher[int, int] = Batcher(fail, name="t")
        with pytest.raises(ConfigError, match="database gone"):
            await batcher.submit(1)
        batcher.close()

    asyncio.run(main())


def test_row_cache_sees_revocation_at_once(store: SqlStore) -> None:
    store.add_device(_device("d1"), AuditEvent("enroll", "d1", None, {}))

    async def main() -> tuple[bool, bool, bool, bool]:
        rows = RowCache(store)
        first = await rows.device("d1")
        cached = await rows.device("d1")
        store.set_device_state("d1", revoked_at=5)  # another process would do the same
        after = await rows.device("d1")
        unknown = await rows.device("nobody")
        rows.close()
        assert first is not None
        assert cached is not None
        assert after is not None
        return first.active, cached is first, after.active, unknown is None

    assert asyncio.run(main()) == (True, True, False, True)


def test_row_cache_sees_a_device_enrolled_after_a_miss(store: SqlStore) -> None:
    async def main() -> bool:
        rows = RowCache(store)
        assert await rows.device("d2") is None
        store.add_device(_device("d2"), AuditEvent("enroll", "d2", None, {}))
        found = await rows.device("d2")
        rows.close()
        return found is not None

    assert asyncio.run(main())


def test_replay_store_spends_each_proof_id_once(store: SqlStore) -> None:
    async def main() -> list[bool]:
        rows = RowCache(store)
        replay = ProofReplayStore(store, rows)

        async def spend(jkt: str, jti: str, expires_at: int = 100) -> bool:
            _, fresh = await replay.spend(jkt=jkt, jti=jti, expires_at=expires_at)
            return fresh

        results = await asyncio.gather(*(spend("k", jti) for jti in ("a", "b", "a", "c")))
        again = await spend("k", "b")
        other_key = await spend("k2", "b")
        assert replay.prune(now=101) == 4
        fresh_after_prune = await spend("k", "a", 200)
        rows.close()
        return [*results, again, other_key, fresh_after_prune]

    assert asyncio.run(main()) == [True, True, False, True, False, True, True]


def test_spending_a_proof_id_reads_the_revocation_epoch_in_the_same_round(
    store: SqlStore,
) -> None:
    store.add_device(_device("d3"), AuditEvent("enroll", "d3", None, {}))

    async def main() -> tuple[bool, bool, bool]:
        rows = RowCache(store)
        replay = ProofReplayStore(store, rows)
        before = await rows.epoch()
        cached = await rows.device("d3", epoch=before)
        store.set_device_state("d3", revoked_at=5)  # committed before the next request
        epoch, fresh = await replay.spend(jkt="k", jti="x", expires_at=100)
        # the device lookup with the round's epoch sees the revocation: the cache was dropped
        after = await rows.device("d3", epoch=epoch)
        rows.close()
        assert cached is not None
        assert after is not None
        return epoch != before, cached.active and not after.active, fresh

    assert asyncio.run(main()) == (True, True, True)


def test_server_nonces_rotate_and_the_previous_one_stays_valid(tmp_path: Path) -> None:
    KeyRing.create_key(tmp_path / "keys", now=0)
    ring = KeyRing.load(tmp_path / "keys")
    clock = [1000.0]
    nonces = DpopNonces(lambda: ring, ttl_s=60, clock=lambda: clock[0])
    first = nonces.current()
    assert first in nonces.accepted()
    clock[0] += 60
    assert nonces.current() != first
    assert first in nonces.accepted()
    clock[0] += 60
    assert first not in nonces.accepted()
    assert not DpopNonces(lambda: ring, ttl_s=0).enabled


def test_the_original_request_comes_from_the_gateway_and_configuration() -> None:
    common = {"external_url": "https://gw.test", "request_method": "GET"}
    nginx = original_request(
        original_method="post", original_uri="/v1/m?x=1", envoy_path=None, **common
    )
    assert (nginx.htm, nginx.htu) == ("POST", "https://gw.test/v1/m")
    envoy = original_request(original_method=None, original_uri=None, envoy_path="v1/m", **common)
    assert (envoy.htm, envoy.htu) == ("GET", "https://gw.test/v1/m")
    bad = [
        ({"original_method": None, "original_uri": None, "envoy_path": None}, "did not forward"),
        ({"original_method": None, "original_uri": "/a", "envoy_path": None}, "original method"),
        ({"original_method": "GET", "original_uri": "//evil/a", "envoy_path": None}, "origin"),
        ({"original_method": "GET", "original_uri": "http://evil/a", "envoy_path": None}, "origin"),
    ]
    for kwargs, message in bad:
        with pytest.raises(OriginalRequestError, match=message):
            original_request(**kwargs, **common)  # type: ignore[arg-type]
    with pytest.raises(OriginalRequestError, match="no external URL"):
        original_request(
            external_url="", original_method="GET", original_uri="/", envoy_path=None,
            request_method="GET",
        )  # fmt: skip


def test_client_networks_are_a_24_or_a_56() -> None:
    assert client_network("198.51.100.7") == "198.51.100.0/24"
    assert client_network("2001:db8:1:2345::1") == "2001:db8:1:2300::/56"
    assert client_network("::ffff:198.51.100.7") == "198.51.100.0/24"


def test_usage_counts_this_process_and_the_last_flushed_totals(store: SqlStore) -> None:
    clock = [600.0]
    observer = UsageObserver(store, clock=lambda: clock[0])
    seen = observer.observe(device_id="d", jti="t", exp=10_000, network="198.51.100.0/24")
    assert seen == ObservedUsage(networks=1, requests_this_minute=1)
    observer.observe(device_id="d", jti="t", exp=10_000, network="198.51.100.0/24")
    deltas, jtis, minute = observer.begin_flush()
    observer.abort_flush()  # a failed write keeps the deltas
    deltas, jtis, minute = observer.begin_flush()
    assert deltas.requests == {("t", 10): ("d", 2)}
    observer.finish_flush(observer.write(deltas, jtis, minute))
    # another replica flushed a network and requests for the same token
    other = UsageObserver(store, clock=lambda: clock[0])
    other.observe(device_id="d", jti="t", exp=10_000, network="203.0.113.0/24")
    d2, j2, m2 = other.begin_flush()
    other.finish_flush(other.write(d2, j2, m2))
    d3, j3, m3 = observer.begin_flush()
    observer.finish_flush(observer.write(d3, j3, m3))
    seen = observer.observe(device_id="d", jti="t", exp=10_000, network="198.51.100.0/24")
    assert seen == ObservedUsage(networks=2, requests_this_minute=4)


def test_usage_rule_fires_on_networks_then_rate() -> None:
    rule = UsageRule(max_networks_per_token=2, max_requests_per_minute=10)
    assert rule.check_usage(ObservedUsage(2, 10)).passed
    over = rule.check_usage(ObservedUsage(3, 1))
    assert (over.passed, over.rule) == (False, "usage.max_networks_per_token")
    fast = rule.check_usage(ObservedUsage(1, 11))
    assert (fast.passed, fast.rule) == (False, "usage.max_requests_per_minute")
    assert fast.reason == "11 requests this minute; the limit is 10"


def test_policy_binding_and_usage_rules_load_with_clear_errors() -> None:
    usage = '[rules.usage]\nmode = "report"\nmax_networks_per_token = 3'
    policy = parse_policy(POLICY.format(binding="dpop", usage=usage), source="p.toml")
    assert policy.token.binding is TokenBinding.DPOP
    (rule,) = [r for r in policy.rules if isinstance(r, UsageRule)]
    assert (rule.max_networks_per_token, rule.max_requests_per_minute, rule.mode) == (
        3, None, RuleMode.REPORT
    )  # fmt: skip
    with pytest.raises(PolicySchemaError, match="'mtls' is not valid"):
        parse_policy(POLICY.format(binding="mtls", usage=""), source="p.toml")
    with pytest.raises(PolicySchemaError, match="sets no limit"):
        parse_policy(POLICY.format(binding="dpop", usage="[rules.usage]"), source="p.toml")
    with pytest.raises(PolicySchemaError, match=r"outside 1\.\.1000"):
        parse_policy(
            POLICY.format(binding="dpop", usage="[rules.usage]\nmax_networks_per_token = 0"),
            source="p.toml",
        )


def test_usage_rules_need_a_manifest_that_declares_usage() -> None:
    usage = "[rules.usage]\nmax_networks_per_token = 3"
    policy = parse_policy(POLICY.format(binding="dpop", usage=usage), source="p.toml")
    fields = [{"id": "timezone.iana", "purpose": "p", "retention_days": 1, "mode": "report"}]
    silent = parse_manifest(render_manifest("v", fields))
    with pytest.raises(
        ConfigError, match=r"does not declare usage\.client_networks, usage\.requests"
    ):
        check_usage_disclosed(policy, silent)
    observed = [
        {"id": i, "purpose": "p", "retention_days": 1}
        for i in ("usage.requests", "usage.client_networks")
    ]
    check_usage_disclosed(policy, parse_manifest(render_manifest("v", fields, observed)))


def test_totals_type_is_importable() -> None:
    assert UsageTotals({}, {}).networks == {}


@pytest.mark.parametrize("mode", [RuleMode.ENFORCE, RuleMode.REPORT])
def test_usage_rules_deny_or_report_and_audit_once_per_token(
    store: SqlStore, mode: RuleMode
) -> None:
    from server.errors import AccessDeniedError
    from server.policy import Policy
    from server.usage.enforce import UsageEnforcer

    policy = Policy(
        "p", (UsageRule(max_networks_per_token=1, max_requests_per_minute=None, mode=mode),)
    )
    audited: list[AuditEvent] = []
    enforcer = UsageEnforcer(UsageObserver(store), policy=lambda: policy, audit=audited.append)
    enforcer.check(device_id="d", jti="t", exp=2**40, network="198.51.100.0/24")
    for _ in range(2):
        if mode is RuleMode.ENFORCE:
            with pytest.raises(AccessDeniedError, match="used from 2 client networks") as info:
                enforcer.check(device_id="d", jti="t", exp=2**40, network="203.0.113.0/24")
            assert info.value.extra["reasons"] == [
                "usage.max_networks_per_token (enforce): token used from 2 client networks; "
                "the limit is 1"
            ]
        else:
            enforcer.check(device_id="d", jti="t", exp=2**40, network="203.0.113.0/24")
    assert [(e.event, e.decision, e.data["rule"]) for e in audited] == [
        (
            "usage.denied" if mode is RuleMode.ENFORCE else "usage.reported",
            "deny" if mode is RuleMode.ENFORCE else None,
            "usage.max_networks_per_token",
        )
    ]


def test_presented_credentials() -> None:
    from server.introspection import InactiveTokenError, presented_credential

    dpop = presented_credential("DPoP tok", None, ["proof"])
    assert (dpop.scheme, dpop.token, dpop.proof) == ("dpop", "tok", "proof")
    bearer = presented_credential("Bearer tok", "other", [])
    assert (bearer.scheme, bearer.token, bearer.proof) == ("bearer", "tok", None)
    api_key = presented_credential(None, "tok", [])
    assert (api_key.scheme, api_key.token) == ("bearer", "tok")
    with pytest.raises(InactiveTokenError) as info:
        presented_credential("DPoP tok", None, ["p1", "p2"])
    assert info.value.step == "dpop.format"


def test_the_epoch_is_read_at_once_or_else_through_the_thread(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite the epoch is read on the calling thread (no hop); when that read cannot
    proceed without waiting it answers None and the batched round on the dedicated thread
    reads it, with revocation still seen at once."""
    store.add_device(_device("d4"), AuditEvent("enroll", "d4", None, {}))
    at_once = AccessRound(store).epoch_at_once()
    assert at_once is not None
    monkeypatch.setattr(AccessRound, "epoch_at_once", lambda self: None)

    async def main() -> tuple[int, bool]:
        rows = RowCache(store)
        through_thread = await rows.epoch()
        assert (await rows.device("d4")) is not None
        store.set_device_state("d4", revoked_at=5)
        device = await rows.device("d4")
        rows.close()
        assert device is not None
        return through_thread, device.active

    assert asyncio.run(main()) == (at_once, False)


def test_a_closed_batcher_answers_503_not_a_cancelled_task() -> None:
    async def main() -> None:
        batcher: Batcher[int, int] = Batcher(lambda items: list(items), name="t")
        assert await batcher.submit(1) == 1
        batcher.close()
        with pytest.raises(UnavailableError, match="shutting down"):
            await batcher.submit(2)

    asyncio.run(main())
