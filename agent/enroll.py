"""Enrollment: create the device key and register it with the verifier."""

from __future__ import annotations

import time
from collections.abc import Callable

from agent.client import VerifierClient
from agent.devicekey import choose_provider, create_key
from agent.errors import ProtocolError
from agent.home import AgentHome, Enrollment


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
