"""The ``software`` provider: a P-256 key in an owner-only PEM file. Honest label: software."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attest.errors import KeyProviderError
from attest.jose import ECDSA_SHA256, der_to_raw
from attest.jwk import public_jwk
from attest.keys import KeyClass, ProviderName
from attest.privatefile import write_private_atomic


class SoftwareKey:
    """A software P-256 key; its file is mode 0600 inside the agent's 0700 data directory."""

    name = ProviderName.SOFTWARE
    claimed_class = KeyClass.SOFTWARE

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._key = private_key

    @classmethod
    def create(cls, path: Path) -> SoftwareKey:
        """Generate a key and store it at ``path``."""
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_private_atomic(path, pem)
        return cls(key)

    @classmethod
    def load(cls, path: Path) -> SoftwareKey:
        """Load the key stored at ``path``."""
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except FileNotFoundError:
            raise KeyProviderError(
                f"no device key at {path}: run 'envattest init' to enroll"
            ) from None
        except (ValueError, OSError) as exc:
            raise KeyProviderError(
                f"device key {path} is unreadable ({exc}); run 'envattest forget' and "
                "'envattest init' to enroll a new one"
            ) from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise KeyProviderError(f"device key {path} is not a P-256 key")
        return cls(key)

    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK."""
        return public_jwk(self._key.public_key())

    def sign(self, data: bytes) -> bytes:
        """ES256 signature, raw ``r||s``."""
        return der_to_raw(self._key.sign(data, ECDSA_SHA256))

    def attestation(self, nonce: bytes) -> dict[str, Any]:
        """Software keys carry no hardware proof; the key signs the challenge."""
        from attest.keyattest.none import build_none_statement

        return build_none_statement(nonce=nonce, jwk=self.public_jwk(), signer=self.sign)
