"""Enrollment: create the device key and register it with the verifier.

``prepare_enrollment`` runs before the consent prompt, so nobody is asked to agree to
anything on a machine whose key provider cannot work or with a token the verifier refuses.
``enroll_device`` runs after consent: the new key signs the verifier's enrollment challenge
(format ``none``), or the TPM certifies it over that challenge (format ``tpm2``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from agent.client import VerifierClient
from agent.devicekey import KeyChoice, choose_provider, create_key
from agent.errors import ProtocolError
from agent.home import AgentHome, Enrollment
from attest.b64 import b64url_decode, b64url_encode
from attest.errors import FormatError, KeyProviderError
from attest.keys import KeyProvider, ProviderName


def request_enrollment_challenge(client: VerifierClient, enrollment_token: str) -> bytes:
    """POST /v1/enroll/challenge: the verifier answers only for a valid enrollment token."""
    nonce = client.post_json(
        "/v1/enroll/challenge",
        {"enrollment_token": enrollment_token},
        during="checking the enrollment token",
    ).get("nonce")
    try:
        return b64url_decode(nonce) if isinstance(nonce, str) else b""
    except FormatError:
        return b""


def check_provider_usable(provider: ProviderName, *, tcti: str | None) -> None:
    """Raise KeyProviderError, saying what to do, if ``provider`` cannot make a key here."""
    if provider is not ProviderName.TPM2:
        return  # software keys always work; platform providers report at creation
    try:
        from attest.keys.tpm2 import probe_tpm2
    except ImportError:
        how = (
            "this binary was built without TPM support (packaging/build.sh --with-tpm)"
            if getattr(sys, "frozen", False)
            else "TPM support is not installed (pip install 'envattest[tpm]')"
        )
        raise KeyProviderError(f"--key tpm2: {how}; or enroll with --key software") from None
    probe = probe_tpm2(tcti)
    if not probe.available:
        raise KeyProviderError(
            f"--key tpm2: no usable TPM here ({probe.reason}); fix that, or enroll with "
            "--key software"
        )


def prepare_enrollment(
    *,
    client: VerifierClient,
    enrollment_token: str,
    key_choice: str,
    allow_fallback: bool,
    tcti: str | None,
    announce: Callable[[str], None],
) -> KeyChoice:
    """Before consent: (1) a key provider that works here, (2) a token the verifier accepts."""
    choice = choose_provider(
        key_choice, allow_fallback=allow_fallback, tcti=tcti, announce=announce
    )
    if key_choice != "auto":  # auto has just probed what it picked
        check_provider_usable(choice.provider, tcti=tcti)
    if not request_enrollment_challenge(client, enrollment_token):
        raise ProtocolError("the verifier's enrollment challenge has no nonce; check --server")
    return choice


def _enroll_tpm2(
    client: VerifierClient, key: KeyProvider, enrollment_token: str, nonce: bytes
) -> dict[str, Any]:
    """Certify the key over the challenge, then answer the credential-activation challenge."""
    pending = client.enroll(
        enrollment_token=enrollment_token,
        public_jwk=key.public_jwk(),
        key_attestation=key.attestation(nonce),
        nonce=b64url_encode(nonce),
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
    choice: KeyChoice,
    ca_file: str | None,
    tcti: str | None,
    announce: Callable[[str], None],
) -> Enrollment:
    """Create the key with the chosen provider, enroll it; store the enrollment locally."""
    announce(f"key provider: {choice.provider.value} ({choice.reason})")
    key = create_key(home, choice.provider, tcti=tcti)
    # a fresh challenge: the one from prepare_enrollment may have expired at the prompt
    nonce = request_enrollment_challenge(client, enrollment_token)
    if choice.provider is ProviderName.TPM2:
        answer = _enroll_tpm2(client, key, enrollment_token, nonce)
    else:
        answer = client.enroll(
            enrollment_token=enrollment_token,
            public_jwk=key.public_jwk(),
            key_attestation=key.attestation(nonce),
            nonce=b64url_encode(nonce),
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
