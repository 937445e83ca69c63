"""The bounded JSON parser: every hostile vector is a FormatError naming its bound, ordinary
documents (and documents exactly at each bound) parse, and the evidence and device-request
parsers refuse the same vectors inside a JWS."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from attest import strictjson
from attest.dpop import DPOP_TYP, DpopProofError, verify_proof
from attest.errors import FormatError
from attest.evidence import parse_evidence
from attest.jose import sign_compact
from attest.keys.software import SoftwareKey
from attest.strictjson import DEFAULT_LIMITS, JsonLimits, parse_json, parse_json_object

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
JSON_VECTORS = VECTORS / "json"

# vector -> words of the refusal (tests/vectors/json/generate.py writes the files)
REFUSALS = {
    "huge-int": "a number has more than 32 characters",
    "long-float": "a number has more than 32 characters",
    "float-overflow": "the number 1e400 is out of range",
    "nan": "NaN is not JSON",
    "infinity": "-Infinity is not JSON",
    "deep-array": "nested deeper than 16 levels",
    "deep-object": "nested deeper than 16 levels",
    "unclosed-nesting": "nested deeper than 16 levels",
    "duplicate-member": "member 'sub' appears twice",
    "many-members": "an object has more than 512 members",
    "long-array": "an array has more than 512 elements",
    "long-string": "a string is longer than 16384 characters",
    "lone-surrogate": "a string holds a lone surrogate",
    "latin1": "not UTF-8",
    "utf16": "not UTF-8",
    "bom": "not JSON (Unexpected UTF-8 BOM",
}


@pytest.fixture(autouse=True)
def _fresh_decoders() -> None:
    """Each test builds its decoders: one cached by an earlier test would hide a broken
    constructor (the cache is per thread and lives as long as the process)."""
    vars(strictjson._decoders).clear()


def test_every_vector_has_an_expected_refusal() -> None:
    assert {p.stem for p in JSON_VECTORS.glob("*.json")} == set(REFUSALS)


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_hostile_documents_are_refused_with_their_bound(name: str) -> None:
    raw = (JSON_VECTORS / f"{name}.json").read_bytes()
    with pytest.raises(FormatError, match=re.escape(f"body: {REFUSALS[name]}")):
        parse_json(raw, what="body")


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_hostile_evidence_payloads_are_format_errors(name: str) -> None:
    raw = (VECTORS / "evidence" / f"payload-{name}.txt").read_bytes()
    with pytest.raises(FormatError, match=re.escape(f"evidence payload: {REFUSALS[name]}")):
        parse_evidence(raw)


@pytest.mark.parametrize(
    "name", sorted(n for n in REFUSALS if (VECTORS / "evidence" / f"header-{n}.txt").exists())
)
def test_hostile_evidence_headers_are_format_errors(name: str) -> None:
    raw = (VECTORS / "evidence" / f"header-{name}.txt").read_bytes()
    with pytest.raises(FormatError, match=re.escape(f"JWS header: {REFUSALS[name]}")):
        parse_evidence(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 16 + b"]" * 16,  # exactly the depth bound
        b'{"a":' * 15 + b"{}" + b"}" * 15,
        json.dumps({f"m{i}": i for i in range(512)}).encode(),
        json.dumps(list(range(512))).encode(),
        json.dumps({"s": "x" * 16384}).encode(),
        b"-" + b"9" * 31,  # 32 characters
        b"1.5e300",
        '"\\ud83d\\ude00 caf\u00e9"'.encode(),  # a surrogate pair is one character
        b'{"a": [1, 2.5, true, false, null, {"b": "c"}]}',
    ],
)
def test_documents_within_every_bound_parse(raw: bytes) -> None:
    assert parse_json(raw) == json.loads(raw)


def test_a_duplicate_deep_inside_is_found() -> None:
    with pytest.raises(FormatError, match="'x' appears twice"):
        parse_json(b'{"a": [{"b": {"x": 1, "y": 2, "x": 1}}]}')


def test_the_member_that_appears_twice_is_named() -> None:
    with pytest.raises(FormatError, match="member 'b' appears twice"):
        parse_json(b'{"a": 1, "b": 2, "b": 3}')  # not the first member
    name = "n" * 50
    with pytest.raises(FormatError, match=f"member '{'n' * 40}' appears twice"):
        parse_json(f'{{"{name}": 1, "{name}": 2}}'.encode())  # named up to 40 characters


def test_a_scalar_longer_than_a_string_bound_is_still_a_scalar() -> None:
    padded = b" " * (DEFAULT_LIMITS.max_string_chars + 1)  # long text, no long string in it
    assert parse_json(padded + b"true") is True
    assert parse_json(padded + b"12") == 12


def test_the_size_bound_is_exact() -> None:
    at_bound = b" " * (DEFAULT_LIMITS.max_bytes - 2) + b"{}"
    assert parse_json(at_bound) == {}
    with pytest.raises(FormatError, match="larger than 65536 bytes"):
        parse_json(b" " + at_bound)


def test_the_array_bound_is_exact_wherever_the_commas_are() -> None:
    bound = DEFAULT_LIMITS.max_members
    # one comma short of the bound in the array itself: the rest of the document supplies it
    assert parse_json(json.dumps({"a": list(range(bound)), "b": 1}).encode())["b"] == 1
    with pytest.raises(FormatError, match=f"an array has more than {bound} elements"):
        parse_json(json.dumps(list(range(bound + 1))).encode())  # exactly bound commas


def test_a_lone_surrogate_in_a_member_name_is_refused() -> None:
    with pytest.raises(FormatError, match="lone surrogate"):
        parse_json(b'{"\\ud800": 1}')


def test_a_long_member_name_is_refused() -> None:
    with pytest.raises(FormatError, match="longer than 16384"):
        parse_json(json.dumps({"k" * 16385: 1}).encode())


def test_size_is_checked_before_anything_else() -> None:
    with pytest.raises(FormatError, match="larger than 65536 bytes"):
        parse_json(b" " * (DEFAULT_LIMITS.max_bytes + 1))


def test_limits_are_per_boundary() -> None:
    tight = JsonLimits(max_bytes=64, max_depth=2, max_members=2, max_string_chars=4)
    with pytest.raises(FormatError, match="token header: nested deeper than 2"):
        parse_json(b"[[[]]]", what="token header", limits=tight)
    with pytest.raises(FormatError, match="more than 2 members"):
        parse_json(b'{"a":1,"b":2,"c":3}', limits=tight)
    with pytest.raises(FormatError, match="longer than 4"):
        parse_json(b'"abcde"', limits=tight)
    assert parse_json(b'{"a":[1]}', limits=tight) == {"a": [1]}
    with pytest.raises(FormatError, match="claims: nested deeper than 2"):
        parse_json_object(b'{"a":[[1]]}', what="claims", limits=tight)


def test_an_object_is_required_where_one_is_expected() -> None:
    with pytest.raises(FormatError, match="claims: must be a JSON object"):
        parse_json_object(b"[1]", what="claims")
    assert parse_json_object("{}") == {}


def test_syntax_errors_say_where() -> None:
    with pytest.raises(FormatError, match=r"body: not JSON \(Expecting value at character 6\)"):
        parse_json(b'{"a": }')


SMALL_VECTORS = {
    **{n: (JSON_VECTORS / f"{n}.json").read_bytes() for n in REFUSALS},
    "deep-array": b"[" * 1400,  # the deepest that fits a 4096-character proof
}


@pytest.mark.parametrize("name", sorted(n for n, raw in SMALL_VECTORS.items() if len(raw) < 2500))
def test_hostile_dpop_claims_are_a_format_refusal(name: str, tmp_path: Path) -> None:
    # a proof's key is its own header's jwk: anyone can sign hostile claims validly
    key = SoftwareKey.create(tmp_path / "k.pem")
    jwk = {k: key.public_jwk()[k] for k in ("crv", "kty", "x", "y")}
    proof = sign_compact(
        {"typ": DPOP_TYP, "alg": "ES256", "jwk": jwk}, SMALL_VECTORS[name], key.sign
    )
    with pytest.raises(DpopProofError) as refused:
        verify_proof(
            proof, expected_htm="GET", expected_htu="https://gw.test/x", expected_jkt=None,
            access_token=None, now=0,
        )  # fmt: skip
    assert refused.value.step == "dpop.format"
    assert isinstance(refused.value.__cause__, FormatError)
    assert REFUSALS[name] in str(refused.value.__cause__)
