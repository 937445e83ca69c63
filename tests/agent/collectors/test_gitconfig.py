"""git config syntax, as git reads it."""

from __future__ import annotations

from agent.collectors.gitconfig import GitEntry, parse_git_config


def test_sections_subsections_and_case() -> None:
    text = (
        "[HTTP]\n\tProxy = http://a:1\n"
        '[http "https://Host.example/"]\n\tproxy = http://b:2\n'
        "[http.Old-Host]\n\tproxy = http://c:3\n"
        # Not a header git accepts: its keys belong to no section.
        "[http.https://old.example/]\n\tproxy = http://d:4\n"
    )
    assert parse_git_config(text) == [
        GitEntry("http", None, "proxy", "http://a:1"),
        GitEntry("http", "https://Host.example/", "proxy", "http://b:2"),
        GitEntry("http", "old-host", "proxy", "http://c:3"),
    ]


def test_values_quotes_escapes_comments_and_continuations() -> None:
    text = (
        '[core]\n\tbare\n\ta = "x ; y" # comment\n\tb = one  two ; c\n'
        '\tc = "tab\\there"\n\td = first \\\nsecond\n'
    )
    assert [(e.key, e.value) for e in parse_git_config(text)] == [
        ("bare", "true"),
        ("a", "x ; y"),
        ("b", "one  two"),
        ("c", "tab\there"),
        ("d", "first second"),
    ]


def test_key_on_the_header_line_and_junk_lines() -> None:
    text = "orphan = 1\n[http] proxy = http://p:1\n= nokey\n[[broken\n"
    assert parse_git_config(text) == [GitEntry("http", None, "proxy", "http://p:1")]
