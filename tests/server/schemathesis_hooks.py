"""Schemathesis hooks (SCHEMATHESIS_HOOKS).

The compact-JWS bodies are plain strings. When ``ENVATTEST_ST_URL`` is set (by
tests/server/test_openapi.py), every other call of an operation is made valid before it is
sent, so the run reaches the success paths and their response schemas, not only refusals:
fresh evidence over a fresh nonce for ``/v1/attest``, signed device requests for
``/v1/device/whoami`` and ``/v1/device/forget`` (of a device enrolled for it), the device's
access token for ``/v1/authz`` and ``/v1/introspect`` (with the gateway credential), an unused
enrollment token for the enrollment routes.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import schemathesis

from attest.devicerequest import REQUEST_TYP, DeviceAction, sign_device_request
from attest.keys.software import SoftwareKey
from attest.manifest import parse_manifest
from tests.devices import TestDevice, enroll_body


@schemathesis.serializer("application/eat+jwt", "application/envattest-request+jwt")
def compact_jws(_ctx: Any, value: Any) -> bytes:
    """Send a generated string as the body bytes."""
    return value.encode() if isinstance(value, str) else str(value).encode()


class _Valid:
    """What a valid request of each operation needs, made on demand."""

    def __init__(self, env: dict[str, str]) -> None:
        self.url = env["ENVATTEST_ST_URL"]
        manifest = parse_manifest(httpx.get(f"{self.url}/v1/manifest").content)
        key = SoftwareKey.load(Path(env["ENVATTEST_ST_KEY"]))
        self.device = TestDevice(self.url, env["ENVATTEST_ST_DEVICE"], key, manifest)
        self.gateway = env["ENVATTEST_ST_GATEWAY"]
        self.tokens: Iterator[str] = iter(Path(env["ENVATTEST_ST_TOKENS"]).read_text().split())
        self.key_dir = Path(env["ENVATTEST_ST_KEYS"])
        self.keys = itertools.count()
        self._access_token = ""
        self.calls: Counter[str] = Counter()

    def access_token(self) -> str:
        if not self._access_token:
            answer = self.device.attest(self.device.evidence())
            answer.raise_for_status()
            self._access_token = answer.json()["access_token"]
        return self._access_token

    def enrollment_body(self) -> dict[str, Any] | None:
        token = next(self.tokens, None)
        if token is None:
            return None
        key = SoftwareKey.create(self.key_dir / f"enroll-{next(self.keys)}.pem")
        return enroll_body(self.url, token, key)  # the key signs the enrollment challenge

    def whoami(self) -> str:
        return sign_device_request(
            device_id=self.device.device_id, nonce=self.device.challenge(),
            iat=int(time.time()), action=DeviceAction.WHOAMI, signer=self.device.key.sign,
        )  # fmt: skip

    def forget(self) -> str | None:
        """A forget request of a device enrolled for it (the main device stays enrolled)."""
        token = next(self.tokens, None)
        if token is None:
            return None
        path = self.key_dir / f"forget-{next(self.keys)}.pem"
        device = TestDevice.enroll(self.url, token, path)
        return sign_device_request(
            device_id=device.device_id, nonce=device.challenge(),
            iat=int(time.time()), action=DeviceAction.FORGET, signer=device.key.sign,
        )  # fmt: skip


def _make_valid(valid: _Valid, case: Any) -> None:
    path = case.operation.path
    auth: Callable[[str], dict[str, str]] = lambda t: {"Authorization": f"Bearer {t}"}  # noqa: E731
    if path == "/v1/challenge":
        case.body = {"device_id": valid.device.device_id}
    elif path == "/v1/attest":
        case.body = valid.device.evidence()
    elif path == "/v1/device/whoami":
        case.body = valid.whoami()
        case.media_type = f"application/{REQUEST_TYP}"
    elif path == "/v1/device/forget":
        request = valid.forget()
        if request is not None:
            case.body = request
            case.media_type = f"application/{REQUEST_TYP}"
    elif path == "/v1/authz":
        case.query = {}
        case.headers = {**(case.headers or {}), **auth(valid.access_token())}
    elif path == "/v1/introspect":
        case.headers = {**(case.headers or {}), **auth(valid.gateway)}
        case.media_type = "application/json"
        case.body = {"token": valid.access_token()}
    elif path in ("/v1/enroll", "/v1/enroll/challenge"):
        body = valid.enrollment_body()
        if body is not None:
            case.media_type = "application/json"
            case.body = (
                body if path == "/v1/enroll" else {"enrollment_token": body["enrollment_token"]}
            )


_STATE: dict[str, _Valid] = {}


@schemathesis.hook
def before_call(_ctx: Any, case: Any, _kwargs: dict[str, Any]) -> None:
    """Every other call of an operation: a valid request (see the module docstring)."""
    if "ENVATTEST_ST_URL" not in os.environ:
        return
    if "valid" not in _STATE:
        _STATE["valid"] = _Valid(dict(os.environ))
    valid = _STATE["valid"]
    key = f"{case.operation.method} {case.operation.path}"
    valid.calls[key] += 1
    if valid.calls[key] % 2 == 0:
        _make_valid(valid, case)
