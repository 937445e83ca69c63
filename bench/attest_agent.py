"""Agent side of one attestation, against a local verifier.

    .venv/bin/python bench/attest_agent.py --seconds 30

- ``envattest attest`` as a CLI subprocess (what a user or a credential helper pays),
- ``attest_once`` in-process (challenge, collect, sign, submit, record),
- signing one piece of evidence with the software key, against the baseline of a bare ES256
  sign over the same bytes (measured in the same run).

Per-family collection and TPM signing are in bench/collect.py and bench/tpm.py. The last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench._load import disable_rate_limits, last_line_json, percentile, verifier_server
from tests.servers import clean_env, init_verifier


def _timed(action: Callable[[], Any], *, seconds: float, limit: int) -> list[float]:
    """Milliseconds per call, until ``seconds`` pass or ``limit`` calls are made."""
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline and len(samples) < limit:
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _summary(samples: list[float]) -> dict[str, Any]:
    return {
        "runs": len(samples),
        "p50_ms": round(percentile(samples, 50), 3),
        "p95_ms": round(percentile(samples, 95), 3),
    }


def main() -> int:
    """Set up a verifier and an enrolled agent home, then time the three figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30, help="bound on the whole run")
    args = parser.parse_args()
    started = time.monotonic()
    share = max(1.0, (args.seconds - 8) / 3)  # setup takes a few seconds

    from attest.evidence import ConsentClaim, new_claims, sign_evidence
    from attest.keys.software import SoftwareKey

    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        work = Path(tmp)
        handle = init_verifier(work / "verifier")
        disable_rate_limits(handle.data_dir)
        server = verifier_server(handle.data_dir, handle.port).start()
        try:
            home, user = work / "agent", work / "user"
            user.mkdir()
            env = clean_env(HOME=str(user))
            manifest_hash = httpx.get(f"{server.url}/v1/manifest").headers["ETag"].strip('"')

            def agent(*argv: str) -> None:
                subprocess.run(
                    [sys.executable, "-m", "agent", "--home", str(home), *argv],
                    env=env,
                    cwd=user,
                    capture_output=True,
                    check=True,
                    timeout=60,
                )

            agent(
                "init", "--server", server.url, "--enroll-token", handle.enroll_token(),
                "--accept-manifest", manifest_hash, "--key", "software",
            )  # fmt: skip
            cli = _timed(lambda: agent("attest"), seconds=share, limit=200)

            from agent.attestation import attest_once
            from agent.client import VerifierClient
            from agent.collectors import CollectionContext
            from agent.devicekey import load_key
            from agent.home import AgentHome

            agent_home = AgentHome(home)
            enrollment = agent_home.enrollment()
            key = load_key(agent_home, enrollment)
            ctx = CollectionContext(env=dict(env), home=user, project_dir=user)
            client = VerifierClient(enrollment.server)
            try:
                attest_once(home=agent_home, client=client, key=key, ctx=ctx)  # warm
                inproc = _timed(
                    lambda: attest_once(home=agent_home, client=client, key=key, ctx=ctx),
                    seconds=share,
                    limit=5000,
                )
            finally:
                client.close()
        finally:
            server.stop()

        software = SoftwareKey.create(work / "sign.pem")
        claims = new_claims(
            nonce="n" * 43,
            device_id="dev_bench",
            consent=ConsentClaim("0" * 64, 1_700_000_000, ("timezone.iana",)),  # type: ignore[arg-type]
            signals={"timezone.iana": "Europe/Lisbon"},
            now=int(time.time()),
        )
        signing_input = sign_evidence(claims, software.sign).rsplit(".", 1)[0].encode()
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        bare_key = ec.generate_private_key(ec.SECP256R1())

        def bare() -> None:
            for _ in range(100):
                bare_key.sign(signing_input, ec.ECDSA(hashes.SHA256()))

        def evidence() -> None:
            for _ in range(100):
                sign_evidence(claims, software.sign)

        bare_ms = [x / 100 for x in _timed(bare, seconds=share / 2, limit=10_000)]
        evidence_ms = [x / 100 for x in _timed(evidence, seconds=share / 2, limit=10_000)]

    figures: dict[str, Any] = {
        "cli_attest": _summary(cli),
        "inprocess_attest_once": _summary(inproc),
        "sign_evidence_software": _summary(evidence_ms),
        "bare_es256_sign": _summary(bare_ms),
        "sign_ratio_to_bare": round(percentile(evidence_ms, 50) / percentile(bare_ms, 50), 2),
    }
    print(f"envattest attest (CLI subprocess): p50 {figures['cli_attest']['p50_ms']} ms")
    print(f"attest_once (in-process):          p50 {figures['inprocess_attest_once']['p50_ms']} ms")
    print(
        f"sign_evidence (software key):      p50 {figures['sign_evidence_software']['p50_ms']} ms"
        f"  = {figures['sign_ratio_to_bare']}x a bare ES256 sign "
        f"({figures['bare_es256_sign']['p50_ms']} ms)"
    )
    last_line_json(
        {"bench": "attest_agent", **figures, "elapsed_s": round(time.monotonic() - started, 1)}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
