"""The verifier's published keys as PEM files, for gateways that take one key per file
(HAProxy ``jwt_verify``)."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

CURRENT = "current.pem"


def public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_key_files(keys: dict[str, ec.EllipticCurvePublicKey], out_dir: Path) -> list[Path]:
    """``<kid>.pem`` for each key and ``current.pem`` for the last one listed (the verifier
    lists its signing key last); each written atomically. Returns the files written."""
    if not keys:
        raise ValueError("the JWKS has no P-256 key: is this the verifier's jwks.json?")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    names = [(f"{kid}.pem", key) for kid, key in keys.items()]
    names.append((CURRENT, list(keys.values())[-1]))
    for name, key in names:
        target = out_dir / name
        partial = target.with_name(f".{name}.tmp")
        partial.write_bytes(public_pem(key))
        os.replace(partial, target)
        written.append(target)
    return written


__all__ = ["CURRENT", "public_pem", "write_key_files"]
