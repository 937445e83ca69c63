"""TPM wire parsing, names and KDFs, on the static vectors and on malformed input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attest.b64 import b64url_decode
from attest.keyattest.tpm2_statement import build_tpm2_statement, parse_tpm2_statement
from attest.tpm import (
    TPM_GENERATED_VALUE,
    EccParameters,
    EkCertificateError,
    ObjectAttributes,
    RsaParameters,
    TpmAlg,
    TpmEccCurve,
    TpmSt,
    TpmStructureError,
    kdfa,
    parse_certify_info,
    parse_signature,
    parse_tpm2b_public,
    parse_tpmt_public,
    tpm_name,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "tpm"


def statement(name: str) -> dict[str, str]:
    doc = json.loads((VECTORS / f"{name}.json").read_text())
    result: dict[str, str] = doc["statement"]
    return result


def member(name: str, key: str) -> bytes:
    return b64url_decode(statement(name)[key])


def test_parse_p384_ek() -> None:
    ek = parse_tpmt_public(member("valid_ecc_p384_ek", "ek_public"))
    assert ek.type == TpmAlg.ECC
    assert ek.name_alg == TpmAlg.SHA384
    assert isinstance(ek.parameters, EccParameters)
    assert ek.parameters.curve == TpmEccCurve.NIST_P384
    assert (ek.parameters.symmetric.algorithm, ek.parameters.symmetric.key_bits) == (
        TpmAlg.AES,
        256,
    )
    assert ek.has(ObjectAttributes.RESTRICTED | ObjectAttributes.DECRYPT)
    assert len(ek.name) == 2 + 48


def test_parse_rsa_ek() -> None:
    ek = parse_tpmt_public(member("valid_rsa2048_ek", "ek_public"))
    assert isinstance(ek.parameters, RsaParameters)
    assert ek.parameters.key_bits == 2048
    assert len(ek.parameters.modulus) == 256
    assert ek.public_key().key_size == 2048
    assert not ek.has(ObjectAttributes.USER_WITH_AUTH)  # needs PolicySecret(endorsement)
    assert len(ek.auth_policy) == 32


def test_parse_signing_key_and_ak() -> None:
    key = parse_tpmt_public(member("valid_ecc_p384_ek", "key_public"))
    ak = parse_tpmt_public(member("valid_ecc_p384_ek", "ak_public"))
    assert key.has(ObjectAttributes.FIXED_TPM | ObjectAttributes.SIGN_ENCRYPT)
    assert not key.has(ObjectAttributes.RESTRICTED)
    assert ak.has(ObjectAttributes.RESTRICTED | ObjectAttributes.SIGN_ENCRYPT)
    assert ak.parameters.scheme.scheme == TpmAlg.ECDSA
    assert ak.parameters.scheme.hash_alg == TpmAlg.SHA256


def test_tpm2b_public_wraps_tpmt_public() -> None:
    raw = member("valid_ecc_p384_ek", "key_public")
    wrapped = len(raw).to_bytes(2, "big") + raw
    assert parse_tpm2b_public(wrapped) == parse_tpmt_public(raw)


def test_certify_info_and_name() -> None:
    info = parse_certify_info(member("valid_ecc_p384_ek", "certify_info"))
    key_public = member("valid_ecc_p384_ek", "key_public")
    assert info.magic == TPM_GENERATED_VALUE
    assert info.type == TpmSt.ATTEST_CERTIFY
    assert info.name == tpm_name(TpmAlg.SHA256, key_public)
    assert info.extra_data == b64url_decode(
        json.loads((VECTORS / "valid_ecc_p384_ek.json").read_text())["expected_nonce"]
    )
    assert info.qualified_name[:2] == TpmAlg.SHA256.to_bytes(2, "big")


def test_signature() -> None:
    sig = parse_signature(member("valid_ecc_p384_ek", "certify_signature"))
    assert (sig.sig_alg, sig.hash_alg) == (TpmAlg.ECDSA, TpmAlg.SHA256)
    assert sig.ecdsa_r > 0
    assert sig.ecdsa_s > 0


@pytest.mark.parametrize(
    ("parse", "field"),
    [
        (parse_tpmt_public, "key_public"),
        (parse_tpmt_public, "ek_public"),
        (parse_certify_info, "certify_info"),
        (parse_signature, "certify_signature"),
    ],
)
def test_truncated_and_trailing_bytes_are_refused(parse: object, field: str) -> None:
    assert callable(parse)
    raw = member("valid_rsa2048_ek", field)
    with pytest.raises(TpmStructureError, match="truncated"):
        parse(raw[:-1])
    with pytest.raises(TpmStructureError, match="trailing bytes"):
        parse(raw + b"\0")


def test_unsupported_object_type() -> None:
    keyed_hash = TpmAlg.KEYEDHASH.to_bytes(2, "big") + bytes(20)
    with pytest.raises(TpmStructureError, match="only RSA and ECC"):
        parse_tpmt_public(keyed_hash)


def test_unsupported_signature_algorithm() -> None:
    with pytest.raises(TpmStructureError, match="only ECDSA, RSASSA and RSAPSS"):
        parse_signature(TpmAlg.ECDAA.to_bytes(2, "big") + bytes(8))


def test_kdfa_is_sp800_108_counter_mode() -> None:
    # Independent HMAC construction of Part 1 §11.4.10.2 for a two-block output.
    import hmac

    key, label, ctx = b"k" * 32, b"STORAGE", b"\x00\x0bname"
    blocks = b"".join(
        hmac.new(
            key, i.to_bytes(4, "big") + label + b"\0" + ctx + (384).to_bytes(4, "big"), "sha256"
        ).digest()
        for i in (1, 2)
    )
    assert kdfa(TpmAlg.SHA256, key, label, ctx, b"", 384) == blocks[:48]


def edited(**members: object) -> dict[str, object]:
    doc: dict[str, object] = dict(statement("valid_submitted_intermediate"))
    doc.update(members)
    return doc


@pytest.mark.parametrize("value", [7, "", None, ["AA"]])
def test_statement_members_must_be_base64url_strings(value: object) -> None:
    with pytest.raises(TpmStructureError, match="member 'ak_public' must be a base64url string"):
        parse_tpm2_statement(edited(ak_public=value))


def test_ek_chain_holds_at_most_five_certificates() -> None:
    issuer = statement("valid_submitted_intermediate")["ek_chain"][0]
    assert len(parse_tpm2_statement(edited(ek_chain=[issuer] * 5)).ek_chain) == 5
    with pytest.raises(TpmStructureError, match="'ek_chain' must be a list of at most 5 strings"):
        parse_tpm2_statement(edited(ek_chain=[issuer] * 6))


@pytest.mark.parametrize("value", [{}, "", "AAAA", {"a": 1}])
def test_ek_chain_must_be_a_list(value: object) -> None:
    with pytest.raises(TpmStructureError, match="'ek_chain' must be a list of at most 5 strings"):
        parse_tpm2_statement(edited(ek_chain=value))


def test_a_certificate_that_does_not_parse_is_named() -> None:
    issuer = statement("valid_submitted_intermediate")["ek_chain"][0]
    with pytest.raises(EkCertificateError, match=r"^ek_chain\[1\] is not a DER X\.509"):
        parse_tpm2_statement(edited(ek_chain=[issuer, "AAAA"]))
    with pytest.raises(EkCertificateError, match=r"^ek_cert is not a DER X\.509"):
        parse_tpm2_statement(edited(ek_cert="AAAA"))


@pytest.mark.parametrize("name", ["valid_submitted_intermediate", "valid_rsa2048_ek"])
def test_build_tpm2_statement_is_the_wire_form_parse_reads(name: str) -> None:
    sent = statement(name)
    raw = {k: b64url_decode(v) for k, v in sent.items() if k not in ("format", "ek_chain")}
    chain = [b64url_decode(c) for c in sent.get("ek_chain", [])]
    built = build_tpm2_statement(**raw, ek_chain=chain)
    assert built == sent
    assert ("ek_chain" in built) is bool(chain)
    assert parse_tpm2_statement(built).certify_info.raw == raw["certify_info"]
