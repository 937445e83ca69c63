"""Helpers for DPoP and usage tests: a verifier configured for DPoP, proofs, refusal steps."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx

from attest.dpop import create_proof
from attest.keys.software import SoftwareKey
from tests.devices import TestDevice
from tests.servers import VerifierProcess, init_verifier

POLICY = """\
[policy]
version = "dpop-test-1"

[token]
ttl_s = 900
audience = "envattest"
binding = "{binding}"

[rules.key_class]
allowed = ["tpm2", "hardware-unverified", "software"]

[rules.required_fields]
{extra}
"""


def configure(
    server: VerifierProcess, *, binding: str = "dpop", extra_policy: str = "", **settings: Any
) -> VerifierProcess:
    """Write a policy with ``[token] binding`` and append settings to server.toml."""
    (server.data_dir / "policy.toml").write_text(POLICY.format(binding=binding, extra=extra_policy))
    with (server.data_dir / "server.toml").open("a") as config:
        for name, value in settings.items():
            config.write(f"{name} = {value!r}\n".replace("'", '"'))
    return server


def dpop_verifier(data_dir: Path, *, database_url: str = "", **settings: Any) -> VerifierProcess:
    """An unstarted verifier that issues DPoP-bound tokens (see ``configure``)."""
    return configure(init_verifier(data_dir, database_url=database_url), **settings)


def proof(key: SoftwareKey, token: str | None, method: str, url: str, **overrides: Any) -> str:
    """A DPoP proof by ``key`` for one request."""
    return create_proof(
        signer=key.sign,
        public_jwk=key.public_jwk(),
        htm=method,
        htu=url,
        access_token=token,
        **overrides,
    )


def dpop_headers(
    device: TestDevice, token: str, method: str, url: str, **kw: Any
) -> dict[str, str]:
    """Authorization: DPoP and a fresh proof for ``method url``."""
    return {"Authorization": f"DPoP {token}", "DPoP": proof(device.key, token, method, url, **kw)}


def gateway_headers(method: str, path: str) -> dict[str, str]:
    """What nginx auth_request adds: the original method and URI."""
    return {"X-Original-Method": method, "X-Original-URI": path}


_REFUSAL = re.compile(
    r'^envattest_token_refusals_total\{endpoint="(\w+)",step="([\w.]+)"\} ([0-9.e+]+)$', re.M
)


def refusals(server: VerifierProcess) -> dict[tuple[str, str], float]:
    """Forward-auth and introspection refusals by step, from /metrics."""
    text = httpx.get(f"{server.url}/metrics").text
    return {(m[1], m[2]): float(m[3]) for m in _REFUSAL.finditer(text)}


def refused_at(server: VerifierProcess, before: dict[tuple[str, str], float]) -> list[str]:
    """The steps whose refusal count grew since ``before``."""
    after = refusals(server)
    return sorted(f"{e}:{s}" for (e, s), n in after.items() if n > before.get((e, s), 0))


def now() -> int:
    """Wall-clock seconds."""
    return int(time.time())
