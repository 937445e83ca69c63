"""Benchmark the latency the loopback proxy adds, against a direct connection in the same run.

    .venv/bin/python bench/proxy.py --seconds 3            # software key, plus swtpm if present
    .venv/bin/python bench/proxy.py --seconds 3 --no-tpm

A paced SSE upstream (its own process) streams 3 events 5 ms apart. The client (this process)
alternates requests sent directly to the upstream and through ``envattest proxy`` (its own
process, a DPoP-bound token, a fresh ES256 proof per request): per request it records the time
to the first streamed body byte and to the end of the answer. Prints p50/p99 of both paths, the
difference (of the percentiles, and paired: each proxied request minus the direct one just
before it), the proxy process's CPU time per request, the time of one proof (claims and
signature) and of the key's signature alone, and for a swtpm-held key the TPM's share (its
sign time, and the proxy's added latency with the TPM minus with the software key). Bounded:
``--seconds`` per key kind and ``--max-requests`` pairs. The machine's load averages at start
and end are part of the result (figures from a busy machine are not comparable). The last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

EVENTS, INTERVAL_S = 3, 0.005
TOKEN = "bench.access.token"


def _serve_upstream() -> None:
    from tests.stubs.paced_sse import paced_sse

    with paced_sse(events=EVENTS, interval_s=INTERVAL_S) as stub:
        print(stub.url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin


def _serve_proxy(upstream: str, key_kind: str, workdir: Path, tcti: str | None) -> None:
    from agent.proxy.credentials import IssuedToken
    from agent.proxy.heldkey import HeldKey
    from agent.proxy.rewrite import Upstream
    from agent.proxy.running import BackgroundProxy, SerializedKey, device_proof_factory
    from attest.keys import KeyProvider
    from attest.keys.tpm2 import Tpm2Key

    key: KeyProvider
    if key_kind == "tpm2":
        key = Tpm2Key.create(workdir / "tpm-key.json", tcti=tcti)
    else:
        from attest.keys.software import SoftwareKey

        key = SoftwareKey.create(workdir / "software.pem")
    serialized: KeyProvider = SerializedKey(key)
    if isinstance(key, Tpm2Key):  # as the agent does: the session is held between proofs
        serialized = HeldKey(key, key.held_signer)
    proxy = BackgroundProxy(
        upstream=Upstream.parse(upstream),
        obtain_for=lambda _e: lambda: IssuedToken(TOKEN, "DPoP", time.time(), time.time() + 3600),
        proof=device_proof_factory(serialized),
        offload_signing=key_kind == "tpm2",
        signing_executor=serialized.executor if isinstance(serialized, HeldKey) else None,
    )
    endpoint = proxy.start()
    sign = _percentiles([_timed(lambda: serialized.sign(b"x" * 256)) for _ in range(50)])
    make_proof = device_proof_factory(serialized)
    proof = _percentiles(
        [
            _timed(lambda: make_proof("POST", upstream + "/v1/messages", TOKEN, None))
            for _ in range(50)
        ]
    )
    print(json.dumps({"base": endpoint.base_url, "sign": sign, "proof": proof}), flush=True)
    sys.stdin.read()
    proxy.stop()


def _timed(action: object) -> float:
    start = time.perf_counter()
    action()  # type: ignore[operator]
    return (time.perf_counter() - start) * 1000


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
    }


def _cpu_ms(pid: int) -> float:
    """User plus system CPU time of process ``pid`` so far (Linux /proc), in ms."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


@contextmanager
def _child(*args: str) -> Iterator[tuple[str, int]]:
    """This script in another mode, as its own process; yields its first line and pid."""
    process = subprocess.Popen(
        [sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdin is not None
    try:
        yield process.stdout.readline().strip(), process.pid
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _one(client: httpx.Client, url: str) -> tuple[float, float]:
    """Milliseconds to the first body byte and to the end of one streamed answer."""
    start = time.perf_counter()
    first = 0.0
    with client.stream("POST", url, content=b"{}") as answer:
        for _ in answer.iter_raw():
            if not first:
                first = time.perf_counter()
    end = time.perf_counter()
    assert answer.status_code == 200, answer.status_code
    return (first - start) * 1000, (end - start) * 1000


def compare(
    upstream: str, proxied_base: str, proxy_pid: int, seconds: float, limit: int
) -> dict[str, object]:
    """Alternate direct and proxied requests until ``seconds`` or ``limit`` pairs; also the
    proxy process's CPU time per request, which scheduling noise on a busy machine does not
    inflate."""
    samples: dict[str, list[float]] = {k: [] for k in ("direct_ttfb", "direct_total",
                                                        "proxy_ttfb", "proxy_total")}  # fmt: skip
    with httpx.Client(timeout=30) as direct, httpx.Client(timeout=30) as proxied:
        for client, url in ((direct, upstream), (proxied, proxied_base)):
            for _ in range(20):  # warm up connections, imports, caches
                _one(client, url + "/v1/messages")
        cpu_before = _cpu_ms(proxy_pid)
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline and len(samples["direct_ttfb"]) < limit:
            ttfb, total = _one(direct, upstream + "/v1/messages")
            samples["direct_ttfb"].append(ttfb)
            samples["direct_total"].append(total)
            ttfb, total = _one(proxied, proxied_base + "/v1/messages")
            samples["proxy_ttfb"].append(ttfb)
            samples["proxy_total"].append(total)
        cpu_per_request = (_cpu_ms(proxy_pid) - cpu_before) / len(samples["proxy_total"])
    figures = {name: _percentiles(values) for name, values in samples.items()}
    # paired: each proxied request minus the direct one just before it (same moment's noise)
    paired = {
        what: _percentiles(
            [
                p - d
                for p, d in zip(samples[f"proxy_{what}"], samples[f"direct_{what}"], strict=True)
            ]
        )
        for what in ("ttfb", "total")
    }
    added = {
        what: {
            q: round(figures[f"proxy_{what}"][q] - figures[f"direct_{what}"][q], 3)
            for q in ("p50_ms", "p99_ms")
        }
        for what in ("ttfb", "total")
    }
    return {
        "figures": figures,
        "added": added,
        "added_paired": paired,
        "proxy_cpu_ms_per_request": round(cpu_per_request, 3),
    }


def run(seconds: float, limit: int, tcti: str | None, workdir: Path) -> dict[str, object]:
    """Software key always; the TPM key when ``tcti`` is given."""
    result: dict[str, object] = {"seconds": seconds, "events": EVENTS, "interval_s": INTERVAL_S}
    result["load_average_start"] = [round(x, 2) for x in os.getloadavg()]
    with _child("--serve-upstream") as (upstream, _):
        kinds = ["software"] + (["tpm2"] if tcti else [])
        for kind in kinds:
            extra = ["--tcti", tcti] if kind == "tpm2" and tcti else []
            args = ["--serve-proxy", upstream, "--key", kind, "--workdir", str(workdir), *extra]
            with _child(*args) as (line, pid):
                started = json.loads(line)
                measured = compare(upstream, started["base"], pid, seconds, limit)
                measured["sign"] = started["sign"]
                measured["proof"] = started["proof"]
                result[kind] = measured
    if "tpm2" in result:
        software, tpm = result["software"], result["tpm2"]
        assert isinstance(software, dict)
        assert isinstance(tpm, dict)
        result["tpm_share_ms"] = {
            "sign_p50": tpm["sign"]["p50_ms"],
            "added_ttfb_p50_minus_software": round(
                tpm["added"]["ttfb"]["p50_ms"] - software["added"]["ttfb"]["p50_ms"], 3
            ),
            "added_ttfb_paired_p50_minus_software": round(
                tpm["added_paired"]["ttfb"]["p50_ms"] - software["added_paired"]["ttfb"]["p50_ms"],
                3,
            ),
        }
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def main(argv: list[str] | None = None) -> int:
    """Parse arguments; measure (or serve, when started as a helper process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per key kind")
    parser.add_argument("--max-requests", type=int, default=2000, help="pairs per key kind")
    parser.add_argument("--tcti", help="a real TPM (default: a throwaway swtpm, if installed)")
    parser.add_argument("--no-tpm", action="store_true", help="software key only")
    parser.add_argument("--serve-upstream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-proxy", metavar="UPSTREAM", help=argparse.SUPPRESS)
    parser.add_argument("--key", default="software", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_upstream:
        _serve_upstream()
        return 0
    if args.serve_proxy:
        _serve_proxy(args.serve_proxy, args.key, args.workdir, args.tcti)
        return 0
    os.environ.setdefault("TSS2_LOG", "all+none")
    with tempfile.TemporaryDirectory(prefix="envattest-bench-") as tmp:
        workdir = Path(tmp)
        if args.no_tpm or args.tcti:
            result = run(args.seconds, args.max_requests, args.tcti, workdir)
        else:
            result = _with_swtpm(args.seconds, args.max_requests, workdir)
    _print(result)
    return 0


def _with_swtpm(seconds: float, limit: int, workdir: Path) -> dict[str, object]:
    import shutil

    if shutil.which("swtpm") is None:
        print("swtpm not installed: software key only", file=sys.stderr)
        return run(seconds, limit, None, workdir)
    from tests.tpm.swtpm import manufacture_tpm

    tpm = manufacture_tpm(workdir / "swtpm")
    tpm.start()
    try:
        return run(seconds, limit, tpm.tcti, workdir)
    finally:
        tpm.stop()


def _print(result: dict[str, object]) -> None:
    for kind in ("software", "tpm2"):
        measured = result.get(kind)
        if not isinstance(measured, dict):
            continue
        figures, added = measured["figures"], measured["added"]
        print(f"[{kind} key] proof p50 {measured['proof']['p50_ms']} ms (signature alone "
              f"{measured['sign']['p50_ms']} ms); proxy CPU "
              f"{measured['proxy_cpu_ms_per_request']} ms per request")  # fmt: skip
        for name, figure in figures.items():
            print(f"  {name:13s} p50 {figure['p50_ms']:8.3f} ms  p99 {figure['p99_ms']:8.3f} ms"
                  f"  (n={figure['n']})")  # fmt: skip
        rows = [("added", added), ("paired", measured["added_paired"])]
        for label, table in rows:
            for what, values in table.items():
                print(f"  {label} {what:5s}  p50 {values['p50_ms']:8.3f} ms  "
                      f"p99 {values['p99_ms']:8.3f} ms")  # fmt: skip
    if "tpm_share_ms" in result:
        print(f"TPM share: {result['tpm_share_ms']}")
    print(f"load averages: start {result['load_average_start']}, end {result['load_average_end']}")
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    raise SystemExit(main())
