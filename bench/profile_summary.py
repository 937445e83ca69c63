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

CATEGORIES = (
    ("store: SQL and commit", ("server/store/", "sqlalchemy/", "GroupCommitter", "psycopg")),
    ("crypto: ES256 verify + JWT sign", ("verify_es256", "ECAlgorithm", "jwt/", "cryptography/")),
    ("verifier checks: parse, policy, signals",
     ("server/policy/", "parse_evidence", "check_signal_values", "_check_claims",
      "attest/evidence.py", "attest/manifest")),
    ("thread-pool hop (anyio)", ("anyio/", "starlette/concurrency.py", "WorkerThread")),
    ("token check (forward auth)",
     ("server/access/", "server/introspection.py", "server/tokens.py")),
    ("HTTP, middleware, FastAPI, JSON",
     ("uvicorn/", "starlette/", "fastapi/", "server/metrics.py", "server/limits.py",
      "server/ratelimit.py", "json/", "pydantic", "server/api/")),
)  # fmt: skip
OTHER = "other (threads, event loop)"


def summarize(stacks: Path) -> tuple[int, collections.Counter[str]]:
    """(samples, samples per category)."""
    total, counts = 0, collections.Counter[str]()
    for line in stacks.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        total += int(count)
        chosen = OTHER
        for frame in reversed(stack.split(";")):
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
