"""secure-enclave provider logic: JSON helper protocol, with a fake transport and a fake helper."""

from __future__ import annotations

import json
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attest.b64 import b64url_decode, b64url_encode
from attest.errors import KeyProviderError
from attest.jwk import load_public_jwk
from attest.keyattest.none import verify_none
from attest.keys import KeyClass, ProviderName
from attest.keys.secure_enclave import SecureEnclaveKey, SubprocessHelper, decode_answer


@dataclass
class FakeEnclave:
    """Implements the helper protocol in memory; the 'blob' is the PEM key (fakes only)."""

    requests: list[dict[str, str]] = field(default_factory=list)
    error: dict[str, Any] | None = None

    def call(self, request: dict[str, str]) -> dict[str, Any]:
        self.requests.append(request)
        if self.error is not None:
            return decode_answer(json.dumps(self.error))
        if request["op"] == "create":
            key = ec.generate_private_key(ec.SECP256R1())
            blob = key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            return {"ok": True, "key": b64url_encode(blob), "public": _x963(key)}
        loaded = serialization.load_der_private_key(b64url_decode(request["key"]), None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        if request["op"] == "public":
            return {"ok": True, "public": _x963(loaded)}
        signature = loaded.sign(b64url_decode(request["data"]), ec.ECDSA(hashes.SHA256()))
        return {"ok": True, "signature": b64url_encode(signature)}


def _x963(key: ec.EllipticCurvePrivateKey) -> str:
    return b64url_encode(
        key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )


def verify(jwk: dict[str, str], data: bytes, raw: bytes) -> None:
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    load_public_jwk(jwk).verify(der, data, ec.ECDSA(hashes.SHA256()))


def test_create_sign_reload(tmp_path: Path) -> None:
    enclave = FakeEnclave()
    key = SecureEnclaveKey.create(tmp_path / "se.json", transport=enclave)
    assert (key.name, key.claimed_class) == (
        ProviderName.SECURE_ENCLAVE,
        KeyClass.HARDWARE_UNVERIFIED,
    )
    assert (tmp_path / "se.json").stat().st_mode & 0o777 == 0o600
    raw = key.sign(b"evidence")
    verify(key.public_jwk(), b"evidence", raw)
    reloaded = SecureEnclaveKey.load(tmp_path / "se.json", transport=enclave)
    assert reloaded.public_jwk() == key.public_jwk()
    assert [r["op"] for r in enclave.requests] == ["create", "sign", "public"]
    # no hardware proof, but the key signs the enrollment challenge (proof of possession)
    verified = verify_none(
        key.attestation(b"n"), expected_jwk=key.public_jwk(), expected_nonce=b"n"
    )
    assert verified.public_jwk == key.public_jwk()


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        ("unavailable", "no Secure Enclave"),
        ("invalid_key", "run 'envattest forget'"),
        ("auth_failed", "unlock the Mac"),
        ("bad_request", "reinstall envattest"),
        ("weird", "see the helper message"),
    ],
)
def test_helper_errors_say_what_to_do(code: str, hint: str, tmp_path: Path) -> None:
    enclave = FakeEnclave(error={"ok": False, "error": code, "message": "m"})
    with pytest.raises(KeyProviderError, match=hint):
        SecureEnclaveKey.create(tmp_path / "se.json", transport=enclave)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "no JSON answer"),
        ("[]", "without an 'ok' member"),
        ('{"ok": "yes"}', "without an 'ok' member"),
    ],
)
def test_malformed_answers(line: str, message: str) -> None:
    with pytest.raises(KeyProviderError, match=message):
        decode_answer(line)


def test_bad_public_point_and_signature(tmp_path: Path) -> None:
    class Broken(FakeEnclave):
        def call(self, request: dict[str, str]) -> dict[str, Any]:
            answer = super().call(request)
            if request["op"] == "create":
                answer["public"] = b64url_encode(b"\x04" + b"\x01" * 64)
            return answer

    with pytest.raises(KeyProviderError, match="not on P-256"):
        SecureEnclaveKey.create(tmp_path / "se.json", transport=Broken())

    class BadSig(FakeEnclave):
        def call(self, request: dict[str, str]) -> dict[str, Any]:
            answer = super().call(request)
            if request["op"] == "sign":
                answer["signature"] = b64url_encode(b"not der")
            return answer

    key = SecureEnclaveKey.create(tmp_path / "se.json", transport=BadSig())
    with pytest.raises(KeyProviderError, match="not DER ECDSA"):
        key.sign(b"x")


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(KeyProviderError, match="run 'envattest init'"):
        SecureEnclaveKey.load(tmp_path / "absent.json", transport=FakeEnclave())
    (tmp_path / "bad.json").write_text('{"version": 9}')
    with pytest.raises(KeyProviderError, match="is unreadable"):
        SecureEnclaveKey.load(tmp_path / "bad.json", transport=FakeEnclave())


def test_subprocess_transport_round_trip(tmp_path: Path) -> None:
    # A stand-in helper speaking the same stdin/stdout protocol, to test the process boundary.
    helper = tmp_path / "fake-helper"
    helper.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            """
            import json, sys
            request = json.loads(sys.stdin.readline())
            if request.get("op") == "public":
                print(json.dumps({"ok": True, "public": request["key"]}))
            else:
                print("diagnostic", file=sys.stderr)
                print(json.dumps({"ok": False, "error": "bad_request", "message": "op"}))
            """
        )
    )
    helper.chmod(0o755)
    transport = SubprocessHelper(helper)
    assert transport.call({"op": "public", "key": "abc"}) == {"ok": True, "public": "abc"}
    with pytest.raises(KeyProviderError, match="bad_request"):
        transport.call({"op": "nope"})
    with pytest.raises(KeyProviderError, match="cannot run"):
        SubprocessHelper(tmp_path / "absent").call({"op": "create"})
