"""Where a server's Python CPU goes, from ``bench/verifier.py --profile-dir`` stacks.

    .venv/bin/python bench/profile_summary.py /tmp/prof/cycle-sqlite-1.txt 4.6

Reads py-spy raw (collapsed) stacks sampled with ``--gil`` (the thread holding the GIL, so
Python CPU only: kernel time such as fsync and context switches is not in the samples),
assigns each sample to the innermost frame that names a cost category, and prints each
category's share and that share of the given server CPU per operation (ms).
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

PROJECTOR = "fleet projector (its own process)"
CATEGORIES = (
    ("ES256: evidence verify, token sign",
     ("verify_es256", "SigningKey.sign", "ECAlgorithm", "jwt/", "cryptography/")),
    ("evidence parse: strict JSON, claims",
     ("attest/strictjson.py", "attest/evidence.py", "attest/jose.py", "attest/b64.py",
      "json/decoder.py", "parse_evidence")),
    ("signal shapes (pydantic)",
     ("check_signal_values", "pydantic", "attest/catalog/values.py")),
    ("policy", ("server/policy/",)),
    ("audit record: canonical JSON, hash chain",
     ("server/audit/", "json/encoder.py", "json/__init__.py")),
    ("store: SQL, commits, revocation epoch",
     ("server/store/", "server/access/", "sqlalchemy/", "psycopg", "GroupCommitter")),
    ("thread-pool hop (anyio)", ("anyio/", "starlette/concurrency.py", "WorkerThread")),
    ("HTTP: uvicorn parse and send", ("uvicorn/", "httptools")),
    ("edge layer, routes, nonces, tokens, metrics",
     ("server/edge.py", "server/fastroutes.py", "server/api/", "server/metrics.py",
      "prometheus_client/", "server/limits.py", "server/ratelimit.py", "server/requestid.py",
      "server/nonces.py", "server/verifier.py", "server/tokens.py", "server/introspection.py",
      "starlette/", "fastapi/", "orjson")),
)  # fmt: skip
OTHER = "other (event loop, threads)"


def summarize(stacks: Path) -> tuple[int, collections.Counter[str]]:
    """(samples, samples per category): a sample of the projector process is the
    projector's; any other goes to the innermost frame that names a category."""
    total, counts = 0, collections.Counter[str]()
    for line in stacks.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        total += int(count)
        chosen = PROJECTOR if "project_forever" in stack else OTHER
        for frame in reversed(stack.split(";") if chosen == OTHER else ()):
            hit = next((name for name, keys in CATEGORIES if any(k in frame for k in keys)), None)
            if hit is not None:
                chosen = hit
                break
        counts[chosen] += int(count)
    return total, counts


def main() -> int:
    """Print the table."""
    if len(sys.argv) != 3:
        raise SystemExit("usage: profile_summary.py STACKS_FILE SERVER_CPU_MS_PER_OP")
    total, counts = summarize(Path(sys.argv[1]))
    per_op = float(sys.argv[2])
    print(f"{total} samples; {per_op} ms server CPU per operation")
    for name, count in counts.most_common():
        print(f"  {name:<42} {100 * count / total:5.1f} %  {per_op * count / total:6.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
