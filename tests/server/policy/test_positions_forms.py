"""The whole key -> line map of documents that use every TOML form, so each scanner branch
(strings, escapes, arrays, inline tables, arrays of tables, comments, CRLF) is pinned."""

from __future__ import annotations

import tomllib

import pytest

from server.policy.positions import KeyPath, format_path, key_lines, line_of
from tests.server.policy.conftest import VECTORS

EVERY_FORM: dict[KeyPath, int] = {
    ("policy",): 2,
    ("policy", "version"): 3,
    ("policy", "quoted.key"): 4,
    ("rules",): 6,
    ("rules", "timezone"): 6,
    ("rules", "timezone", "allow"): 7,
    ("rules", "timezone", "allow", 0): 8,
    ("rules", "timezone", "allow", 1): 9,
    ("rules", "timezone", "allow", 2): 10,
    ("rules", "timezone", "allow", 3): 12,
    ("rules", "timezone", "a"): 14,
    ("rules", "timezone", "a", "b"): 14,
    ("rules", "timezone", "a", "b", "d"): 14,
    ("rules", "timezone", "a", "b", "e"): 14,
    ("rules", "timezone", "a", "b", "e", 0): 14,
    ("rules", "timezone", "a", "b", "e", 1): 15,
    ("arr",): 17,
    ("arr", 0): 17,
    ("arr", 0, "x"): 18,
    ("arr", 0, "sub"): 19,
    ("arr", 0, "sub", "y"): 20,
    ("arr", 1): 21,
    ("arr", 1, "x"): 22,
    ("arr", 1, "z"): 25,
}

MORE_FORMS: dict[KeyPath, int] = {
    ("a",): 1,
    ("b.c",): 2,
    ("b.c", "d"): 2,
    ("t1",): 3,
    ("t1", "q.r"): 3,
    ("t1", "q.r", "e"): 4,
    ("t1", "q.r", "f"): 5,
    ("t1", "q.r", "f", 0): 5,
    ("t1", "q.r", "f", 0, 0): 5,
    ("t1", "q.r", "f", 0, 1): 5,
    ("t1", "q.r", "f", 1): 5,
    ("t1", "q.r", "f", 1, 0): 6,
    ("t1", "q.r", "f", 2): 6,
    ("t1", "q.r", "f", 2, "g"): 6,
    ("t1", "q.r", "h"): 7,
    ("t1", "q.r", "i"): 8,
    ("t1", "q.r", "j"): 9,
    ("t1", "q.r", "k"): 10,
    ("aot",): 11,
    ("aot", "b"): 11,
    ("aot", "b", 0): 11,
    ("aot", "b", 0, "l"): 12,
    ("aot", "b", 0, "c"): 13,
    ("aot", "b", 0, "c", "m"): 14,
    ("aot", "b", 1): 15,
    ("aot", "b", 1, "n"): 16,
    ("aot", "b", 1, "n", 0): 17,
}

CRLF = '[policy]\r\nversion = "v"\r\n[rules.x]\r\nallow = [\r\n  "a",\r\n  "b"]\r\n'
CRLF_LINES: dict[KeyPath, int] = {
    ("policy",): 1,
    ("policy", "version"): 2,
    ("rules",): 3,
    ("rules", "x"): 3,
    ("rules", "x", "allow"): 4,
    ("rules", "x", "allow", 0): 5,
    ("rules", "x", "allow", 1): 6,
}


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ((VECTORS / "positions-every-form.toml").read_text(), EVERY_FORM),
        ((VECTORS / "positions-more-forms.toml").read_text(), MORE_FORMS),
        (CRLF, CRLF_LINES),
        ("", {}),
        ("# only a comment", {}),
        ("'a.b' = 1\n'c' . d = 2", {("a.b",): 1, ("c",): 2, ("c", "d"): 2}),
        ("x = 1 # no newline at the end", {("x",): 1}),
        ("\n\n\t  \n[t]\n\n  k\t=\t'v'", {("t",): 4, ("t", "k"): 6}),
        ('a = "\\\\"\nb = "\\""\nc = 1', {("a",): 1, ("b",): 2, ("c",): 3}),
        ('[t]\n"a\\"b" = 1\n"\\u00e4" = 2', {("t",): 1, ("t", 'a"b'): 2, ("t", "ä"): 3}),
        ('a = """\n\\"""\n"""\nb = 1', {("a",): 1, ("b",): 4}),
        ('a = """"""\nb = \'\'\'\'\'\'\nc = 1', {("a",): 1, ("b",): 2, ("c",): 3}),
        ("a = [[1], [\n[2]]]\nb = 2", {
            ("a",): 1, ("a", 0): 1, ("a", 0, 0): 1, ("a", 1): 1, ("a", 1, 0): 2,
            ("a", 1, 0, 0): 2, ("b",): 3,
        }),
        ("a = {b = {c = 1}, d = 2}\ne = 3", {
            ("a",): 1, ("a", "b"): 1, ("a", "b", "c"): 1, ("a", "d"): 1, ("e",): 2,
        }),
        ("[[x]]\n[[x]]\n[[x]]\ny = 1", {("x",): 1, ("x", 0): 1, ("x", 1): 2, ("x", 2): 3,
                                        ("x", 2, "y"): 4}),
    ],
    ids=["every-form", "more-forms", "crlf", "empty", "comment", "literal-keys", "no-final-newline",
         "blank-lines-and-tabs", "escapes", "escaped-keys", "multi-line-escape", "empty-multi-line",
         "nested-arrays",
         "nested-inline-tables", "three-array-tables"],
)  # fmt: skip
def test_the_whole_line_map(text: str, lines: dict[KeyPath, int]) -> None:
    tomllib.loads(text)
    assert key_lines(text) == lines


def test_line_of_takes_the_nearest_recorded_parent() -> None:
    lines = {("a",): 3, ("a", "b"): 5}
    assert line_of(lines, ("a", "b", "c", 2)) == 5
    assert line_of(lines, ("a", "x")) == 3
    assert line_of(lines, ("a", "b")) == 5
    assert line_of(lines, ("z", "b")) is None
    assert line_of(lines, ()) is None


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("rules",), "rules"),
        ((3,), "[3]"),
        (("a-b_C9", 0, "x"), "a-b_C9[0].x"),
        (("rules", "a b", 1), 'rules."a b"[1]'),
        (("", "x"), '"".x'),
        (("ä",), '"ä"'),
    ],
)
def test_format_path(path: KeyPath, text: str) -> None:
    assert format_path(path) == text
