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
import threading
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


class _Broken(Exception):
    """A bound broke inside the decoder; ``parse_json`` names the document."""


class _Bounded:
    """The decoder hooks for one set of limits: they raise ``_Broken`` as soon as a bound
    breaks. They hold no state of a parse, so one decoder per limits serves every parse."""

    def __init__(self, limits: JsonLimits) -> None:
        self.limits = limits
        self.decoder = json.JSONDecoder(
            parse_int=self.parse_int,
            parse_float=self.parse_float,
            parse_constant=self.parse_constant,
            object_pairs_hook=self.object_pairs,
        )

    def number(self, text: str) -> None:
        if len(text) > self.limits.max_number_chars:
            raise _Broken(
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
            raise _Broken(f"the number {text} is out of range")
        return value

    def parse_constant(self, name: str) -> object:
        raise _Broken(f"{name} is not JSON (RFC 8259); send a number or null")

    def object_pairs(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if len(pairs) > self.limits.max_members:
            raise _Broken(f"an object has more than {self.limits.max_members} members")
        doc = dict(pairs)
        if len(doc) != len(pairs):
            names = [name for name, _ in pairs]
            twice = next(name for name in doc if names.count(name) > 1)
            raise _Broken(f"member {twice[:40]!r} appears twice; send each member once")
        return doc

    def string(self, value: str) -> None:
        if len(value) > self.limits.max_string_chars:
            raise _Broken(f"a string is longer than {self.limits.max_string_chars} characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Broken("a string holds a lone surrogate (\\ud800-\\udfff)") from None

    def walk(self, root: dict[str, Any] | list[Any], *, strings: bool) -> None:
        """Depth and array length of every container; with ``strings``, every string too.
        Iterative: one stack instead of a call per container."""
        max_depth, max_members = self.limits.max_depth, self.limits.max_members
        stack: list[tuple[Any, int]] = [(root, 1)]
        while stack:
            value, depth = stack.pop()
            if depth > max_depth:
                raise _Broken(f"nested deeper than {max_depth} levels")
            if type(value) is dict:
                children: Any = value.values()
                if strings:
                    for name in value:
                        self.string(name)
            else:
                children = value
                if len(value) > max_members:
                    raise _Broken(f"an array has more than {max_members} elements")
            for child in children:
                kind = type(child)
                if kind is dict or kind is list:
                    stack.append((child, depth + 1))
                elif strings and kind is str:
                    self.string(child)


_decoders = threading.local()  # per thread: a decoder's scanner is not meant to be shared


def _bounded(limits: JsonLimits) -> _Bounded:
    """The hooks and decoder for ``limits``, built once per thread."""
    cache: dict[JsonLimits, _Bounded] | None = getattr(_decoders, "by_limits", None)
    if cache is None:
        cache = _decoders.by_limits = {}
    bounded = cache.get(limits)
    if bounded is None:
        bounded = cache[limits] = _Bounded(limits)
    return bounded


def parse_json(raw: bytes | str, *, what: str = "body", limits: JsonLimits = DEFAULT_LIMITS) -> Any:
    """Parse one untrusted JSON document within ``limits``; raises FormatError naming ``what``."""
    try:
        return _parse(raw, limits)
    except _Broken as exc:
        raise FormatError(f"{what}: {exc}") from None


def _parse(raw: bytes | str, limits: JsonLimits) -> Any:
    # (1) size first, then strict UTF-8: json.loads(bytes) would also take UTF-16 and UTF-32
    if len(raw) > limits.max_bytes:
        raise _Broken(f"larger than {limits.max_bytes} bytes; send less")
    if isinstance(raw, bytes | bytearray):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise _Broken("not UTF-8; send UTF-8 JSON (RFC 8259 section 8.1)") from None
    else:
        text = raw
    if text.startswith("\ufeff"):  # as json.loads says it; the decoder alone would not
        raise _Broken("not JSON (Unexpected UTF-8 BOM at character 0); send UTF-8 without a BOM")
    # (2) numbers, constants, member counts and duplicates inside the decoder's hooks
    bounded = _bounded(limits)
    try:
        doc = bounded.decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise _Broken(f"not JSON ({exc.msg} at character {exc.pos}); fix the syntax") from None
    except RecursionError:
        raise _Broken(f"nested deeper than {limits.max_depth} levels") from None
    # (3) the walk, only where a bound can break: a document with fewer brackets than the
    #     depth bound cannot be too deep, one with fewer commas than the member bound cannot
    #     hold a longer array, one shorter than a bound cannot hold a longer string
    brackets = text.count("[") + text.count("{")
    long_strings = len(text) > limits.max_string_chars
    surrogates = "\\u" in text and _ESCAPED_SURROGATE.search(text) is not None
    strings = long_strings or surrogates
    if isinstance(doc, dict | list):
        if brackets > limits.max_depth or strings or text.count(",") >= limits.max_members:
            bounded.walk(doc, strings=strings)
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
