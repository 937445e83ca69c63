"""Hostile files: every way a configuration file can be wrong ends in an error code."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

import pytest

from agent.collectors import configfiles
from agent.collectors.configfiles import (
    MAX_CONFIG_BYTES,
    ErrorCode,
    load_json,
    load_text,
    load_toml,
    load_yaml,
    parse_dotenv,
    parse_ini,
    read_capped,
    strip_jsonc,
)

from .support import write


def test_missing_file_is_absent_not_an_error(tmp_path: Path) -> None:
    assert read_capped(tmp_path / "nope.json") is None
    assert load_json(tmp_path / "nope.json") is None
    # A parent that is a file is just as absent.
    write(tmp_path / "file", "x")
    assert load_json(tmp_path / "file" / "settings.json") is None


def test_dangling_symlink_is_absent(tmp_path: Path) -> None:
    (tmp_path / "settings.json").symlink_to(tmp_path / "gone.json")
    assert load_json(tmp_path / "settings.json") is None


def test_file_over_the_cap_is_never_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = write(tmp_path / "settings.json", b'{"a": "' + b"x" * MAX_CONFIG_BYTES + b'"}')
    monkeypatch.setattr(os, "open", lambda *a, **k: pytest.fail("opened a file over the cap"))
    assert read_capped(big) is ErrorCode.TOO_LARGE
    loaded = load_json(big)
    assert loaded is not None
    assert loaded.error is ErrorCode.TOO_LARGE


def test_file_at_the_cap_is_read(tmp_path: Path) -> None:
    path = write(tmp_path / "f", b"a" * MAX_CONFIG_BYTES)
    data = read_capped(path)
    assert isinstance(data, bytes)
    assert len(data) == MAX_CONFIG_BYTES


def test_a_file_that_grows_after_stat_is_cut_at_the_cap(tmp_path: Path) -> None:
    path = write(tmp_path / "f", b"a" * 10)
    assert read_capped(path, cap=4) is ErrorCode.TOO_LARGE
    assert read_capped(path, cap=10) == b"a" * 10


@pytest.mark.parametrize(
    "content",
    [b"\x00\x01\x02binary\xff\xfe", b'{"env": {}}\x00', b"\xc3\x28 invalid utf-8"],
)
def test_binary_file(tmp_path: Path, content: bytes) -> None:
    loaded = load_json(write(tmp_path / "settings.json", content))
    assert loaded is not None
    assert loaded.error is ErrorCode.BINARY


def test_utf16_with_bom_and_utf8_bom_are_text(tmp_path: Path) -> None:
    utf16 = write(tmp_path / "a.json", '{"k": "v"}'.encode("utf-16"))
    utf8 = write(tmp_path / "b.json", codecs.BOM_UTF8 + b'{"k": "v"}')
    assert [load_json(p) for p in (utf16, utf8)] == [configfiles.ConfigFile(data={"k": "v"})] * 2


def test_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    loaded = load_yaml(tmp_path / "a")
    assert loaded is not None
    assert loaded.error is ErrorCode.SYMLINK_LOOP


def test_directory_where_a_file_is_expected(tmp_path: Path) -> None:
    (tmp_path / "config.toml").mkdir()
    loaded = load_toml(tmp_path / "config.toml")
    assert loaded is not None
    assert loaded.error is ErrorCode.NOT_A_FILE


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_not_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "settings.json")
    # Opening a FIFO without a writer would block forever; it must not be opened at all.
    assert read_capped(tmp_path / "settings.json") is ErrorCode.NOT_A_FILE


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "settings.json", "{}")
    real_open = os.open

    def deny(file: object, *args: object, **kwargs: object) -> int:
        if Path(str(file)) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", deny)
    assert read_capped(path) is ErrorCode.UNREADABLE


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads mode-000 files"
)
def test_unreadable_file_by_mode(tmp_path: Path) -> None:
    path = write(tmp_path / "settings.json", "{}")
    path.chmod(0)
    try:
        assert read_capped(path) is ErrorCode.UNREADABLE
    finally:
        path.chmod(0o600)


@pytest.mark.parametrize(
    ("loader", "content", "code"),
    [
        (load_json, '{"env": ', ErrorCode.INVALID_JSON),
        (load_json, "[" * 100_000 + "]" * 100_000, ErrorCode.INVALID_JSON),
        (load_json, '{"n": ' + "9" * 5000 + "}", ErrorCode.INVALID_JSON),
        (load_toml, "[table\nkey = 1", ErrorCode.INVALID_TOML),
        (load_yaml, "key: [unclosed", ErrorCode.INVALID_YAML),
        (load_yaml, '!!python/object/apply:os.system ["echo never-run"]', ErrorCode.INVALID_YAML),
        (load_yaml, "a: " + "[" * 50_000, ErrorCode.INVALID_YAML),
    ],
)
def test_invalid_content(tmp_path: Path, loader: object, content: str, code: ErrorCode) -> None:
    loaded = loader(write(tmp_path / "config", content))  # type: ignore[operator]
    assert loaded.error is code
    assert loaded.data is None


def test_jsonc_comments_and_trailing_commas_only_when_allowed(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", '{\n  // c\n  "u": "http://x//y", /* b */ "l": [1,],\n}')
    strict, lenient = load_json(path), load_json(path, comments=True)
    assert strict is not None
    assert strict.error is ErrorCode.INVALID_JSON
    assert lenient is not None
    assert lenient.data == {"u": "http://x//y", "l": [1]}


def test_strip_jsonc_leaves_strings_alone() -> None:
    text = '{"a": "// not a comment, /* nor this */", "b": "\\",}"}'
    assert strip_jsonc(text) == text


def test_load_text(tmp_path: Path) -> None:
    assert load_text(write(tmp_path / "t", "x = 1\n")) == configfiles.ConfigFile(data="x = 1\n")


def test_parse_ini_tolerates_what_the_tools_tolerate() -> None:
    text = (
        "top=1\n; comment\n# comment\n[Global]\nproxy = 'http://p:1' ; trailing\n"
        "timeout: 5\nnonsense line\n[Proxy Settings]\nhttpProxy[$e]=$HTTP_PROXY\n"
    )
    assert parse_ini(text) == [
        ("", "top", "1"),
        ("global", "proxy", "http://p:1"),
        ("global", "timeout", "5"),
        ("proxy settings", "httpproxy", "$HTTP_PROXY"),
    ]


def test_parse_dotenv() -> None:
    text = "# c\nexport A='1 # not a comment'\nB=2 # comment\nC=\"3\"\nbad line\n"
    assert parse_dotenv(text) == {"A": "1 # not a comment", "B": "2", "C": "3"}
