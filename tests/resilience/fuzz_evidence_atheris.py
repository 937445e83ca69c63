"""Coverage-guided fuzzing of the evidence parser with atheris (libFuzzer).

    .venv/bin/python tests/resilience/fuzz_evidence_atheris.py -max_total_time=300

Any exception other than FormatError/AlgorithmError is a finding; libFuzzer saves the input.
"""

from __future__ import annotations

import contextlib
import sys

import atheris  # type: ignore[import-untyped, import-not-found, unused-ignore]

with atheris.instrument_imports():
    from attest.errors import AlgorithmError, FormatError
    from attest.evidence import parse_evidence


def test_one_input(data: bytes) -> None:
    """One fuzz input: raw bytes as evidence."""
    with contextlib.suppress(FormatError, AlgorithmError):
        parse_evidence(data)


def main() -> None:
    """Run libFuzzer with the command-line options it was given."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
