"""nginx ``auth_request`` against a live verifier's /v1/authz (docs/gateways.md).

A valid token reaches the upstream with the device identity; expired, forged (another key,
alg none) and revoked-device tokens are stopped with 401 before the upstream sees anything.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.devices import TestDevice
from tests.gateway.nginx import running_nginx, upstream_server
from tests.server.support import (
    access_token,
    enrolled_device,
    mint_token,
    other_key,
    server_signing_key,
    token_claims,
)
from tests.servers import VerifierProcess, run_server_cli


@pytest.fixture(scope="module")
def gateway(
    shared_verifier: VerifierProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, list[dict[str, str]]]]:
    with (
        upstream_server() as (upstream_port, seen),
        running_nginx(
            tmp_path_factory.mktemp("nginx"),
            verifier_port=shared_verifier.port,
            upstream_port=upstream_port,
        ) as url,
    ):
        yield url, seen


@pytest.fixture(scope="module")
def device(
    shared_verifier: VerifierProcess, tmp_path_factory: pytest.TempPathFactory
) -> TestDevice:
    return enrolled_device(shared_verifier, tmp_path_factory.mktemp("dev") / "key.pem")


def _through(url: str, token: str, header: str = "Authorization") -> httpx.Response:
    value = f"Bearer {token}" if header == "Authorization" else token
    return httpx.get(f"{url}/v1/messages", headers={header: value})


def test_a_valid_token_reaches_the_upstream_with_the_device(
    gateway: tuple[str, list[dict[str, str]]], device: TestDevice
) -> None:
    url, seen = gateway
    token = access_token(device)
    for header in ("Authorization", "X-Api-Key"):
        seen.clear()
        answer = _through(url, token, header)
        assert answer.status_code == 200, answer.text
        assert answer.text == "upstream says hello\n"
        assert seen[-1]["x-envattest-device"] == device.device_id
        assert seen[-1]["x-envattest-key-class"] == "software"


def test_no_token_is_stopped(gateway: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = gateway
    seen.clear()
    assert httpx.get(f"{url}/v1/messages").status_code == 401
    assert seen == []


def test_expired_and_forged_tokens_are_stopped(
    shared_verifier: VerifierProcess,
    gateway: tuple[str, list[dict[str, str]]],
    device: TestDevice,
) -> None:
    url, seen = gateway
    claims = token_claims(access_token(device))
    kid, server_key = server_signing_key(shared_verifier.data_dir)
    now = int(time.time())
    stopped = {
        "expired": mint_token({**claims, "iat": now - 3600, "exp": now - 60}, key=server_key,
                              kid=kid),
        "re-signed with another key": mint_token(claims, key=other_key(), kid=kid),
        "alg none": mint_token(claims, key=None, kid=kid, alg="none"),
    }  # fmt: skip
    seen.clear()
    for name, token in stopped.items():
        assert _through(url, token).status_code == 401, name
        assert _through(url, token, "X-Api-Key").status_code == 401, name
    assert seen == []


def test_a_revoked_devices_token_is_stopped_at_once(
    shared_verifier: VerifierProcess, gateway: tuple[str, list[dict[str, str]]], tmp_path: Path
) -> None:
    url, seen = gateway
    device = enrolled_device(shared_verifier, tmp_path / "key.pem")
    token = access_token(device)
    assert _through(url, token).status_code == 200
    run_server_cli(
        ["devices", "revoke", "--data-dir", str(shared_verifier.data_dir), device.device_id]
    )
    seen.clear()
    assert _through(url, token).status_code == 401
    assert seen == []
