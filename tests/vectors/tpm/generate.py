"""Regenerate the static ``tpm2`` key-attestation vectors in this directory from swtpm.

Usage (needs swtpm, swtpm-tools, tpm2-tools and tpm2-pytss; see tests/tpm/swtpm.py)::

    .venv/bin/python tests/vectors/tpm/generate.py

Manufactures three throwaway software TPMs (two sharing a local EK CA, one with its own CA),
builds every case of ``tests.tpm.cases.build_cases`` and writes one ``<case>.json`` per case.
The verifier-only tests (tests/attest/test_keyattest_tpm2_vectors.py) replay them without swtpm.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from tests.tpm.cases import Lab, build_cases  # noqa: E402
from tests.tpm.swtpm import manufacture_tpm  # noqa: E402


def main() -> int:
    """Write every case file; print their names."""
    with tempfile.TemporaryDirectory(prefix="envattest-vectors-") as tmp:
        base = Path(tmp)
        main_tpm = manufacture_tpm(base / "main")
        sibling = manufacture_tpm(base / "sibling", ca=main_tpm.ca)
        foreign = manufacture_tpm(base / "foreign")
        started = []
        try:
            for tpm in (main_tpm, sibling, foreign):
                tpm.start()
                started.append(tpm)
            workdir = base / "keys"
            workdir.mkdir()
            cases = build_cases(Lab(main_tpm, sibling, foreign, workdir))
        finally:
            for tpm in started:
                tpm.stop()
    for old in HERE.glob("*.json"):
        old.unlink()
    for name, case in cases.items():
        (HERE / f"{name}.json").write_text(json.dumps(case, indent=1, sort_keys=True) + "\n")
        print(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
