"""Enrollment: create the device key and register it with the verifier."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from agent.client import VerifierClient
from agent.devicekey import choose_provider, create_key
from agent.errors import ProtocolError
from agent.home import AgentHome, Enrollment
from attest.b64 import b64url_decode, b64url_encode
from attest.errors import FormatError
from attest.keys import KeyProvider, ProviderName


def _enroll_tpm2(client: VerifierClient, key: KeyProvider, enrollment_token: str) -> dict[str, Any]:
    """Certify the key with a fresh nonce, then answer the credential-activation challenge."""
    nonce = client.post_json(
        "/v1/enroll/challenge",
        {"enrollment_token": enrollment_token},
        during="requesting an enrollment challenge",
    ).get("nonce")
    if not isinstance(nonce, str):
        raise ProtocolError("the verifier's enrollment challenge has no nonce")
    pending = client.enroll(
        enrollment_token=enrollment_token,
        public_jwk=key.public_jwk(),
        key_attestation=key.attestation(b64url_decode(nonce)),
        nonce=nonce,
    )
    try:
        blob = b64url_decode(str(pending["credential_blob"]))
        encrypted = b64url_decode(str(pending["encrypted_secret"]))
        enrollment_id = str(pending["enrollment_id"])
    except (KeyError, FormatError) as exc:
        raise ProtocolError("the verifier's TPM enrollment answer is incomplete") from exc
    secret = key.activate_credential(blob, encrypted)  # type: ignore[attr-defined]
    return client.post_json(
        "/v1/enroll/activate",
        {"enrollment_id": enrollment_id, "secret": b64url_encode(secret)},
        during="credential activation",
    )


def enroll_device(
    *,
    home: AgentHome,
    client: VerifierClient,
    server: str,
    enrollment_token: str,
    key_choice: str,
    allow_fallback: bool,
    ca_file: str | None,
    tcti: str | None,
    announce: Callable[[str], None],
) -> Enrollment:
    """Pick a provider, create the key, enroll it; store the enrollment locally."""
    choice = choose_provider(
        key_choice, allow_fallback=allow_fallback, tcti=tcti, announce=announce
    )
    announce(f"key provider: {choice.provider.value} ({choice.reason})")
    key = create_key(home, choice.provider, tcti=tcti)
    if choice.provider is ProviderName.TPM2:
        answer = _enroll_tpm2(client, key, enrollment_token)
    else:
        answer = client.enroll(
            enrollment_token=enrollment_token,
            public_jwk=key.public_jwk(),
            key_attestation=key.attestation(b""),
        )
    device_id, key_class = answer.get("device_id"), answer.get("key_class")
    if not isinstance(device_id, str) or not isinstance(key_class, str):
        raise ProtocolError("the verifier's enrollment answer has no device_id / key_class")
    enrollment = Enrollment(
        server=server,
        device_id=device_id,
        key_provider=choice.provider.value,
        key_class=key_class,
        enrolled_at=int(time.time()),
        ca_file=ca_file,
        tcti=tcti,
    )
    home.save_enrollment(enrollment)
    return enrollment
