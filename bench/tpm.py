"""Benchmark the tpm2 key provider against the software-key baseline from the same run.

    .venv/bin/python bench/tpm.py --seconds 2            # a throwaway swtpm (needs swtpm)
    .venv/bin/python bench/tpm.py --tcti device:/dev/tpmrm0 --seconds 5

Measures: ES256 sign (software key, TPM key), the full ``attestation()`` (TPM2_Certify plus EK
load), credential activation, and the verifier's parse + verify of a statement. Prints one line
per figure (median and p90 in ms) and, as the last line, a JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attest.keyattest import (
    VerifiedTpm2Key,
    make_activation_challenge,
    verify_tpm2_key_attestation,
)
from attest.keys.software import SoftwareKey
from attest.keys.tpm2 import Tpm2Key
from attest.tpm import load_trust_store


def measure(action: Callable[[], object], seconds: float, minimum: int = 5) -> dict[str, float]:
    """Run ``action`` repeatedly for ``seconds`` (at least ``minimum`` times); times in ms."""
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(samples) < minimum or time.perf_counter() < deadline:
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "n": len(samples),
        "median_ms": round(statistics.median(samples), 4),
        "p90_ms": round(samples[int(0.9 * (len(samples) - 1))], 4),
    }


def run(tcti: str, trust_dir: Path, workdir: Path, seconds: float) -> dict[str, object]:
    """All measurements against the TPM at ``tcti``."""
    software = SoftwareKey.create(workdir / "software.pem")
    tpm_key = Tpm2Key.create(workdir / "tpm.json", tcti=tcti)
    trust_store = load_trust_store(trust_dir)
    nonce = os.urandom(32)
    statement = tpm_key.attestation(nonce)
    now = dt.datetime.now(dt.UTC)

    def verify() -> VerifiedTpm2Key:
        return verify_tpm2_key_attestation(
            statement,
            expected_jwk=tpm_key.public_jwk(),
            expected_nonce=nonce,
            trust_store=trust_store,
            now=now,
        )

    verified = verify()

    def activate() -> None:
        challenge = make_activation_challenge(verified)
        assert tpm_key.activate_credential(
            challenge.credential_blob, challenge.encrypted_secret
        ) == (challenge.secret)

    data = b"x" * 1024
    figures = {
        "software_sign": measure(lambda: software.sign(data), seconds),
        "tpm_sign": measure(lambda: tpm_key.sign(data), seconds),
        "tpm_attestation": measure(lambda: tpm_key.attestation(os.urandom(32)), seconds),
        "tpm_activate": measure(activate, seconds),
        "verify_statement": measure(verify, seconds),
        "make_challenge": measure(lambda: make_activation_challenge(verified), seconds),
    }
    sign_ratio = figures["tpm_sign"]["median_ms"] / figures["software_sign"]["median_ms"]
    return {
        "tcti": tcti,
        "ek_kind": tpm_key.ek_kind,
        "seconds_per_figure": seconds,
        "figures": figures,
        "tpm_sign_vs_software_ratio": round(sign_ratio, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run against --tcti or a throwaway swtpm, print figures then JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per figure")
    parser.add_argument("--tcti", help="a real TPM (default: manufacture a swtpm)")
    parser.add_argument("--trust-dir", type=Path, help="EK CA directory (with --tcti)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="envattest-bench-") as tmp:
        base = Path(tmp)
        if args.tcti:
            if args.trust_dir is None:
                parser.error("--tcti needs --trust-dir with the TPM vendor's EK CA certificates")
            result = run(args.tcti, args.trust_dir, base, args.seconds)
        else:
            from tests.tpm.swtpm import manufacture_tpm

            tpm = manufacture_tpm(base / "swtpm")
            trust_dir = base / "trust"
            trust_dir.mkdir()
            (trust_dir / "root.pem").write_text(tpm.ca.root_pem.read_text())
            (trust_dir / "issuer.pem").write_text(tpm.ca.issuer_pem.read_text())
            tpm.start()
            try:
                result = run(tpm.tcti, trust_dir, base, args.seconds)
            finally:
                tpm.stop()
    figures = result["figures"]
    assert isinstance(figures, dict)
    for name, figure in figures.items():
        print(f"{name:18s} median {figure['median_ms']:9.4f} ms  p90 {figure['p90_ms']:9.4f} ms"
              f"  (n={figure['n']})")  # fmt: skip
    print(f"tpm sign is {result['tpm_sign_vs_software_ratio']}x the software-key sign")
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
