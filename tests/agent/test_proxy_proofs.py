"""The proxy's proofs (``attest.dpop.ProofSigner``): each verifies for its own request and
token when the token changes between proofs, and none is ever reused."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.proxy.running import device_proof_factory
from attest.dpop import DpopProofError, verify_proof
from attest.jwk import jwk_thumbprint, load_public_jwk
from attest.keys.software import SoftwareKey

URL = "https://gw.example/v1/messages"


def test_proofs_follow_the_current_token_and_request(tmp_path: Path) -> None:
    key = SoftwareKey.create(tmp_path / "key.pem")
    jkt = jwk_thumbprint(load_public_jwk(key.public_jwk()))
    make = device_proof_factory(key)
    seen: set[str] = set()
    for token, method, nonce in [
        ("tok-1", "POST", None),
        ("tok-2", "GET", "n-1"),
        ("tok-1", "POST", None),
    ]:
        proof = make(method, URL + "?beta=true", token, nonce)
        seen.add(proof)
        checked = verify_proof(
            proof, expected_htm=method, expected_htu=URL, expected_jkt=jkt,
            access_token=token, now=time.time(), accepted_nonces={"n-1"} if nonce else None,
        )  # fmt: skip
        assert (checked.htm, checked.htu, checked.nonce) == (method, URL, nonce)
        other = "tok-2" if token == "tok-1" else "tok-1"
        with pytest.raises(DpopProofError, match="another access token"):
            verify_proof(
                proof, expected_htm=method, expected_htu=URL, expected_jkt=jkt,
                access_token=other, now=time.time(),
            )  # fmt: skip
    assert len(seen) == 3
