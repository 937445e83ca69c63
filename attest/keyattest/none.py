"""``none`` key attestation: no hardware proof, but proof of possession.

The statement is ``{"format": "none", "proof": <compact JWS>}``: the key being enrolled signs
the verifier's enrollment challenge (DESIGN: "the enrolling party holds the key", every
format). Without it, anyone holding an enrollment token could enroll somebody else's public
key. The key class is what can honestly be self-reported: ``software`` or
``hardware-unverified``, never ``tpm2``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from attest.b64 import b64url_encode
from attest.errors import AlgorithmError, FormatError, KeyAttestationError, SignatureError
from attest.jose import Signer, canonical_json, check_es256_header, parse_compact, sign_compact
from attest.jose import verify_es256 as _verify_es256
from attest.jwk import jwk_thumbprint, load_public_jwk, public_jwk
from attest.keys import KeyClass
from attest.strictjson import parse_json_object

FORMAT_NONE = "none"
PROOF_TYP = "envattest-enroll+jwt"
MAX_PROOF_CHARS = 1024
_SELF_REPORTABLE = frozenset({KeyClass.SOFTWARE, KeyClass.HARDWARE_UNVERIFIED})


@dataclass(frozen=True)
class VerifiedNoneKey:
    """A key whose holder signed the challenge: ``software`` or ``hardware-unverified``."""

    public_jwk: dict[str, str]
    key_class: KeyClass


def build_none_statement(*, nonce: bytes, jwk: Mapping[str, str], signer: Signer) -> dict[str, str]:
    """The enrolling side: sign the enrollment challenge with the key being enrolled."""
    header = {"alg": "ES256", "typ": PROOF_TYP, "kid": jwk_thumbprint(load_public_jwk(jwk))}
    payload = canonical_json({"eat_nonce": b64url_encode(nonce)})
    return {"format": FORMAT_NONE, "proof": sign_compact(header, payload, signer)}


def verify_none(
    statement: Mapping[str, object],
    *,
    expected_jwk: Mapping[str, str],
    expected_nonce: bytes,
    claimed_class: KeyClass = KeyClass.SOFTWARE,
) -> VerifiedNoneKey:
    """Check a ``none`` statement; raises KeyAttestationError, or FormatError for a bad JWK."""
    # (1) closed shape: exactly format and proof (a claimed key class is not a member)
    proof = statement.get("proof")
    if set(statement) != {"format", "proof"} or statement.get("format") != FORMAT_NONE:
        raise KeyAttestationError(
            'a "none" key attestation is exactly {"format": "none", "proof": <JWS>}; '
            "update the agent"
        )
    if not isinstance(proof, str) or len(proof) > MAX_PROOF_CHARS:
        raise KeyAttestationError("the proof of possession must be a compact JWS string")
    # (2) tpm2 can never be claimed without the TPM proof (DESIGN: Keys)
    if claimed_class not in _SELF_REPORTABLE:
        raise KeyAttestationError(
            f"key class {claimed_class.value!r} needs a proof; a 'none' attestation can only "
            "enroll 'software' or 'hardware-unverified' keys"
        )
    # (3) the key being enrolled is a public P-256 JWK (raises FormatError)
    key = load_public_jwk(expected_jwk)
    # (4) ES256 only, closed header, the kid names this key (RFC 7638 thumbprint)
    try:
        jws = parse_compact(proof)
        kid = check_es256_header(jws.header, expected_typ=PROOF_TYP)
        doc = parse_json_object(jws.payload, what="proof of possession payload")
    except (FormatError, AlgorithmError, ValueError) as exc:
        raise KeyAttestationError(f"the proof of possession is malformed: {exc}") from exc
    if kid != jwk_thumbprint(key):
        raise KeyAttestationError("the proof of possession names another key")
    # (5) it signs exactly this verifier's challenge for this enrollment token
    if doc != {"eat_nonce": b64url_encode(expected_nonce)}:
        raise KeyAttestationError("the proof of possession signs another challenge")
    # (6) signature by the key being enrolled, over the exact bytes received (possession)
    try:
        _verify_es256(jws, expected_key=key)
    except SignatureError as exc:
        raise KeyAttestationError(
            "the proof of possession is not signed by the key being enrolled"
        ) from exc
    return VerifiedNoneKey(public_jwk=public_jwk(key), key_class=claimed_class)
