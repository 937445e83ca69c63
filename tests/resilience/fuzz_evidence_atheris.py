"""Coverage-guided fuzzing of the parsers of untrusted bytes with atheris (libFuzzer): evidence,
device requests, bounded JSON, and the rate limiter's look at a JWS header.

    .venv/bin/python tests/resilience/fuzz_evidence_atheris.py -max_total_time=300 CORPUS_DIR

Seed CORPUS_DIR with tests/vectors/evidence/*.txt and tests/vectors/json/*.json (as
tests/resilience/test_atheris.py does). Any exception other than FormatError/AlgorithmError is
a finding; libFuzzer saves the input.
"""

from __future__ import annotations

import contextlib
import sys

import atheris  # type: ignore[import-untyped, import-not-found, unused-ignore]

with atheris.instrument_imports():
    from attest.devicerequest import parse_device_request
    from attest.errors import AlgorithmError, FormatError
    from attest.evidence import parse_evidence
    from attest.strictjson import parse_json
    from server.ratelimit import attesting_device


def test_one_input(data: bytes) -> None:
    """One fuzz input: the same bytes to every parser."""
    with contextlib.suppress(FormatError, AlgorithmError):
        parse_evidence(data)
    with contextlib.suppress(FormatError, AlgorithmError):
        parse_device_request(data)
    with contextlib.suppress(FormatError):
        parse_json(data)
    attesting_device(data)


def main() -> None:
    """Run libFuzzer with the command-line options it was given."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
