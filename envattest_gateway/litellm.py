"""LiteLLM proxy custom auth: only requests with a valid envattest token reach a model.

In the proxy's ``config.yaml``::

    general_settings:
      custom_auth: envattest_gateway.litellm.user_api_key_auth

and in its environment: ``ENVATTEST_VERIFIER_URL`` (the verifier's base URL),
``ENVATTEST_GATEWAY_CREDENTIAL`` (from ``envattest-server gateway-credential create``), and
optionally ``ENVATTEST_ISSUER`` (default: the verifier URL), ``ENVATTEST_AUDIENCE``,
``ENVATTEST_CACHE_S`` (introspection cache, default 5), ``ENVATTEST_USERS`` (a JSON file
``{"dev_...": "alice@example.org"}`` naming the LiteLLM user of each device; by default the
user is the device id) and ``ENVATTEST_EXTERNAL_URL`` (the base URL clients use for LiteLLM:
the URL a DPoP proof must name is this plus the request's path; without it DPoP-bound tokens
are refused, because the only other URL at hand takes its host from the client's ``Host``
header). Each request becomes a LiteLLM key
``envattest:<device>`` of that user, so LiteLLM's budgets, rate limits and spend logs apply per
device and per person.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envattest_gateway.checker import Identity, TokenChecker
from envattest_gateway.errors import DeniedError, VerifierUnavailableError

UNAVAILABLE = "the envattest verifier cannot be reached right now; try again in a moment"


@dataclass(frozen=True)
class LiteLLMSettings:
    """The hook's configuration, parsed from the proxy's environment."""

    verifier_url: str
    credential: str
    issuer: str
    audience: str | None
    cache_s: float
    users: Mapping[str, str]
    external_url: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LiteLLMSettings:
        """Parse and check the variables; a missing one names itself."""
        missing = [
            n for n in ("ENVATTEST_VERIFIER_URL", "ENVATTEST_GATEWAY_CREDENTIAL") if not env.get(n)
        ]
        if missing:
            raise ValueError(f"envattest custom auth: set {' and '.join(missing)}")
        users: dict[str, str] = {}
        if env.get("ENVATTEST_USERS"):
            doc = json.loads(Path(env["ENVATTEST_USERS"]).read_text())
            if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
                raise ValueError("ENVATTEST_USERS must name a JSON object of device id -> user id")
            users = {str(k): str(v) for k, v in doc.items()}
        url = env["ENVATTEST_VERIFIER_URL"].rstrip("/")
        external = env.get("ENVATTEST_EXTERNAL_URL", "").strip().rstrip("/")
        if external and not external.startswith(("https://", "http://")):
            raise ValueError(
                f"ENVATTEST_EXTERNAL_URL {external!r} must be the http(s) URL clients use for "
                "this gateway, e.g. https://llm.example"
            )
        return cls(
            verifier_url=url,
            credential=env["ENVATTEST_GATEWAY_CREDENTIAL"],
            issuer=env.get("ENVATTEST_ISSUER") or url,
            audience=env.get("ENVATTEST_AUDIENCE") or None,
            cache_s=float(env.get("ENVATTEST_CACHE_S") or 5),
            users=users,
            external_url=external,
        )


def litellm_key(identity: Identity, users: Mapping[str, str]) -> dict[str, Any]:
    """The fields of LiteLLM's ``UserAPIKeyAuth`` for a verified device."""
    return {
        "api_key": f"envattest:{identity.device_id}",
        "key_alias": f"envattest:{identity.device_id}",
        "user_id": users.get(identity.device_id, identity.device_id),
        "metadata": {
            "envattest_device": identity.device_id,
            "envattest_key_class": identity.key_class,
            "envattest_policy_version": identity.policy_version,
            "envattest_token_id": identity.token_id,
        },
    }


def request_url(settings: LiteLLMSettings, path: str) -> str:
    """The URL a DPoP proof must name (``htu``): the configured external URL and the path,
    never anything the client sent; '' when none is configured (DPoP is then refused)."""
    return settings.external_url + path if settings.external_url else ""


@functools.cache
def _configured() -> tuple[LiteLLMSettings, TokenChecker]:
    # LiteLLM loads the hook as a plain function: one checker per process holds the JWKS
    # and introspection caches for it.
    settings = LiteLLMSettings.from_env(os.environ)
    checker = TokenChecker.for_verifier(
        settings.verifier_url,
        credential=settings.credential,
        issuer=settings.issuer,
        audience=settings.audience,
        cache_s=settings.cache_s,
    )
    return settings, checker


async def user_api_key_auth(request: Any, api_key: str) -> Any:
    """LiteLLM's ``custom_auth`` hook: the device's LiteLLM key, or a 401 with the reason."""
    from fastapi import HTTPException  # LiteLLM's own web framework
    from litellm.proxy._types import UserAPIKeyAuth

    settings, checker = _configured()
    headers = request.headers
    try:
        identity = await checker.check(
            authorization=headers.get("authorization"),
            api_key=headers.get("x-api-key") or api_key,
            dpop=headers.get("dpop"),
            method=request.method,
            url=request_url(settings, request.url.path),
        )
    except DeniedError as exc:
        raise HTTPException(status_code=exc.status, detail=exc.reason) from exc
    except VerifierUnavailableError as exc:
        raise HTTPException(status_code=exc.status, detail=UNAVAILABLE) from exc
    return UserAPIKeyAuth(**litellm_key(identity, settings.users))


__all__ = ["LiteLLMSettings", "litellm_key", "request_url", "user_api_key_auth"]
