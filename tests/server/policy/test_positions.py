"""Key-path line numbers over every TOML form the policy file may use."""

from __future__ import annotations

import tomllib

from hypothesis import given
from hypothesis import strategies as st

from server.policy.positions import format_path, key_lines, line_of
from tests.server.policy.conftest import VECTORS

DOC = (VECTORS / "positions-every-form.toml").read_text()


def test_lines_of_every_form() -> None:
    tomllib.loads(DOC)
    lines = key_lines(DOC)
    assert lines[("policy",)] == 2
    assert lines[("policy", "version")] == 3
    assert lines[("policy", "quoted.key")] == 4
    assert lines[("rules",)] == 6
    assert lines[("rules", "timezone", "allow")] == 7
    assert [lines[("rules", "timezone", "allow", i)] for i in range(4)] == [8, 9, 10, 12]
    assert lines[("rules", "timezone", "a", "b", "e", 1)] == 15
    assert lines[("arr", 0, "sub", "y")] == 20
    assert lines[("arr", 1, "x")] == 22
    assert lines[("arr", 1, "z")] == 25
    assert ("a", "]") not in lines


def test_line_of_falls_back_to_parent() -> None:
    lines = key_lines(DOC)
    assert line_of(lines, ("rules", "timezone", "missing")) == 6
    assert line_of(lines, ("nowhere",)) is None


def test_format_path() -> None:
    assert format_path(("rules", "timezone", "allow", 2)) == "rules.timezone.allow[2]"
    assert format_path(("policy", "quoted.key")) == 'policy."quoted.key"'


@given(
    st.lists(
        st.lists(st.from_regex(r"[A-Za-z/*_]{1,10}", fullmatch=True), max_size=4),
        min_size=1,
        max_size=5,
    )
)
def test_each_array_item_on_its_own_line(tables: list[list[str]]) -> None:
    text = "".join(
        f"[t{n}]\nallow = [\n" + "".join(f'  "{item}",\n' for item in items) + "]\n"
        for n, items in enumerate(tables)
    )
    tomllib.loads(text)
    lines = key_lines(text)
    line = 0
    for n, items in enumerate(tables):
        line += 1
        assert lines[(f"t{n}",)] == line
        line += 1
        for i in range(len(items)):
            line += 1
            assert lines[(f"t{n}", "allow", i)] == line
        line += 1
