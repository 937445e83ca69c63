"""Regenerate the hostile JSON vectors here and the evidence vectors built from them.

Usage::

    .venv/bin/python tests/vectors/json/generate.py

Writes ``<case>.json`` (the raw document) in this directory, ``payload-<case>.txt`` (the
document as the payload of an otherwise well-formed evidence JWS) and ``header-<case>.txt``
(as its protected header) in ``tests/vectors/evidence/``. Every case must be refused by
``attest.strictjson`` with the bound that its name says.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
EVIDENCE = HERE.parent / "evidence"
HEADER = {"alg": "ES256", "typ": "eat+jwt", "kid": "vector-device"}

# case name -> (document bytes, the words of the refusal)
CASES: dict[str, tuple[bytes, str]] = {
    "huge-int": (b'{"iat": ' + b"9" * 10_000 + b"}", "more than 32 characters"),
    "long-float": (b'{"iat": 1.' + b"0" * 5_000 + b"1}", "more than 32 characters"),
    "float-overflow": (b'{"iat": 1e400}', "out of range"),
    "nan": (b'{"iat": NaN}', "NaN is not JSON"),
    "infinity": (b'{"iat": -Infinity}', "-Infinity is not JSON"),
    "deep-array": (b"[" * 5_000 + b"]" * 5_000, "nested deeper than 16"),
    "deep-object": (b'{"a":' * 17 + b"{}" + b"}" * 17, "nested deeper than 16"),
    "unclosed-nesting": (b"[" * 20_000, "nested deeper than 16"),
    "duplicate-member": (b'{"sub": "a", "device_id": "a", "sub": "b"}', "appears twice"),
    "many-members": (
        json.dumps({f"m{i}": i for i in range(600)}).encode(),
        "more than 512 members",
    ),
    "long-array": (json.dumps({"a": list(range(600))}).encode(), "more than 512 elements"),
    "long-string": (json.dumps({"sub": "x" * 20_000}).encode(), "longer than 16384"),
    "lone-surrogate": (b'{"sub": "\\udc00x"}', "lone surrogate"),
    "latin1": ('{"sub": "caf\u00e9"}'.encode("latin-1"), "not UTF-8"),
    "utf16": ('{"sub": "a"}'.encode("utf-16"), "not UTF-8"),
    "bom": (b'\xef\xbb\xbf{"sub": "a"}', "not JSON"),
}


def _segment(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def main() -> int:
    """Write every vector; print their names."""
    signature = _segment(b"\x01" * 64)
    header = _segment(json.dumps(HEADER).encode())
    for name, (document, _words) in CASES.items():
        (HERE / f"{name}.json").write_bytes(document)
        payload = f"{header}.{_segment(document)}.{signature}"
        (EVIDENCE / f"payload-{name}.txt").write_text(payload)
        if len(document) < 4096:
            (EVIDENCE / f"header-{name}.txt").write_text(
                f"{_segment(document)}.{_segment(b'{}')}.{signature}"
            )
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
