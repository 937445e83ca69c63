"""Bounded JSON for untrusted bytes: every JSON boundary of the protocol parses through here.

``json.loads`` alone accepts what an attacker can use against the verifier: integers of any
length (quadratic conversion, and a ``ValueError`` past 4,300 digits), nesting deep enough to
raise ``RecursionError``, ``NaN`` and ``Infinity`` (not JSON, RFC 8259 section 6), duplicate
member names (the last one silently wins, so two parsers can disagree about one document,
RFC 8259 section 4), lone surrogates that later fail to encode, and UTF-16/32 input. Here each
of those is a :class:`~attest.errors.FormatError` that names the bound and how to fix the
document, so a server answers 400 and never 500.

The checks cost little on the hot path: numbers and objects are checked in the decoder's own
hooks; depth, array lengths and string lengths are walked only when the document is large or
nested enough to break a bound.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from attest.errors import FormatError

_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


@dataclass(frozen=True)
class JsonLimits:
    """Bounds for one boundary; the defaults fit every document of protocol v1."""

    max_bytes: int = 64 * 1024
    max_depth: int = 16
    max_members: int = 512  # per object or array
    max_string_chars: int = 16 * 1024
    max_number_chars: int = 32


DEFAULT_LIMITS = JsonLimits()


class _Bounded:
    """The decoder hooks for one parse: they raise FormatError as soon as a bound breaks."""

    def __init__(self, limits: JsonLimits, what: str) -> None:
        self.limits = limits
        self.what = what

    def fail(self, problem: str) -> FormatError:
        return FormatError(f"{self.what}: {problem}")

    def number(self, text: str) -> None:
        if len(text) > self.limits.max_number_chars:
            raise self.fail(
                f"a number has more than {self.limits.max_number_chars} characters; "
                "send numbers of ordinary size"
            )

    def parse_int(self, text: str) -> int:
        self.number(text)
        return int(text)

    def parse_float(self, text: str) -> float:
        self.number(text)
        value = float(text)
        if not math.isfinite(value):
            raise self.fail(f"the number {text} is out of range")
        return value

    def parse_constant(self, name: str) -> object:
        raise self.fail(f"{name} is not JSON (RFC 8259); send a number or null")

    def object_pairs(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if len(pairs) > self.limits.max_members:
            raise self.fail(f"an object has more than {self.limits.max_members} members")
        doc = dict(pairs)
        if len(doc) != len(pairs):
            names = [name for name, _ in pairs]
            twice = next(name for name in doc if names.count(name) > 1)
            raise self.fail(f"member {twice[:40]!r} appears twice; send each member once")
        return doc

    def string(self, value: str) -> None:
        if len(value) > self.limits.max_string_chars:
            raise self.fail(f"a string is longer than {self.limits.max_string_chars} characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise self.fail("a string holds a lone surrogate (\\ud800-\\udfff)") from None

    def walk(self, value: dict[str, Any] | list[Any], depth: int, *, strings: bool) -> None:
        """Depth and array length of every container; with ``strings``, every string too."""
        if depth > self.limits.max_depth:
            raise self.fail(f"nested deeper than {self.limits.max_depth} levels")
        if isinstance(value, dict):
            children: Any = value.values()
            if strings:
                for name in value:
                    self.string(name)
        else:
            children = value
            if len(value) > self.limits.max_members:
                raise self.fail(f"an array has more than {self.limits.max_members} elements")
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                self.walk(child, depth + 1, strings=strings)
            elif strings and kind is str:
                self.string(child)


def parse_json(raw: bytes | str, *, what: str = "body", limits: JsonLimits = DEFAULT_LIMITS) -> Any:
    """Parse one untrusted JSON document within ``limits``; raises FormatError naming ``what``."""
    bounded = _Bounded(limits, what)
    # (1) size first, then strict UTF-8: json.loads(bytes) would also take UTF-16 and UTF-32
    if len(raw) > limits.max_bytes:
        raise bounded.fail(f"larger than {limits.max_bytes} bytes; send less")
    if isinstance(raw, bytes | bytearray):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise bounded.fail("not UTF-8; send UTF-8 JSON (RFC 8259 section 8.1)") from None
    else:
        text = raw
    # (2) numbers, constants, member counts and duplicates inside the decoder's hooks
    try:
        doc = json.loads(
            text,
            parse_int=bounded.parse_int,
            parse_float=bounded.parse_float,
            parse_constant=bounded.parse_constant,
            object_pairs_hook=bounded.object_pairs,
        )
    except json.JSONDecodeError as exc:
        raise bounded.fail(f"not JSON ({exc.msg} at character {exc.pos}); fix the syntax") from None
    except RecursionError:
        raise bounded.fail(f"nested deeper than {limits.max_depth} levels") from None
    # (3) the walk, only where a bound can break: a document with fewer brackets than the
    #     depth bound cannot be too deep, one shorter than a bound cannot hold a longer string
    brackets = text.count("[") + text.count("{")
    long_strings = len(text) > limits.max_string_chars
    surrogates = "\\u" in text and _ESCAPED_SURROGATE.search(text) is not None
    strings = long_strings or surrogates
    if isinstance(doc, dict | list):
        if brackets > limits.max_depth or strings or len(text) > 2 * limits.max_members:
            bounded.walk(doc, 1, strings=strings)
    elif strings and isinstance(doc, str):
        bounded.string(doc)
    return doc


def parse_json_object(
    raw: bytes | str, *, what: str = "body", limits: JsonLimits = DEFAULT_LIMITS
) -> dict[str, Any]:
    """``parse_json`` for documents that must be an object."""
    doc = parse_json(raw, what=what, limits=limits)
    if not isinstance(doc, dict):
        raise FormatError(f"{what}: must be a JSON object")
    return doc
