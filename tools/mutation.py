"""Mutation testing of the verifier's checks with mutmut ([tool.mutmut] in pyproject.toml).

    python tools/mutation.py            # bounded CI run: the enrollment and nonce checks
    python tools/mutation.py --full     # every configured module (evidence, JOSE, key
                                        # attestation, verifier, enrollment, nonces, policy)
    python tools/mutation.py --only 'server.policy.loader.*'    # one module (repeatable)

mutmut runs in a staging copy of the repository (symlinks kept as symlinks, so fixture trees
with dangling links copy cleanly), never in the working tree. It prints the score and every
surviving mutant, classified: ``message`` (only the text of an error message changed; the
check and the error class are intact), ``equivalent`` (no observable difference, see
``classify``) or ``check`` (a real survivor). The bounded run exits 1 on a ``check`` survivor.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COPY = ("attest", "server", "agent", "tests", "pyproject.toml")
# the bounded run (a few minutes on two cores): proof of possession and challenge nonces
CI_PATTERNS = ("attest.keyattest.none.*", "server.nonces.*")
_LINE = re.compile(r"^\s+(\S+): (\S.*)$")  # statuses may be two words ("no tests")
_STRING = re.compile(r"""(?:[rbf]?"(?:[^"\\]|\\.)*"|[rbf]?'(?:[^'\\]|\\.)*')""")
# (removed, added) fragments that Python treats alike, and why
_EQUIVALENT: tuple[tuple[str, str, str], ...] = (
    (', "big")', ", )", "int.to_bytes/from_bytes default to big-endian since Python 3.11"),
    ("ensure_ascii=False", "ensure_ascii=None", "None is falsy like False"),
    ("token_bytes(32)", "token_bytes(None)", "token_bytes() defaults to 32 bytes"),
    ("results), default=0)", "results), default=1)", "no results: the width pads no row"),
    (
        "while self.pos < len(self.text) and",
        "while self.pos <= len(self.text) and",
        "the key-line scanner reaches the end inside a token only in TOML that tomllib refuses",
    ),
    ("skip_blank(newlines=False)", "skip_blank(newlines=None)", "None is falsy like False"),
    (
        "skip_blank(newlines=False)",
        "skip_blank(newlines=True)",
        "valid TOML has no line break inside a key or between '=' and its value",
    ),
    ("results), default=0)", "results), default=None)", "no results: the width pads no row"),
    # the verifier's per-process key cache: a miss loads the same key again
    ("key = self._keys.get(material)", "key = None", "a cache miss loads the same key"),
    ("self._keys.get(material)", "self._keys.get(None)", "a cache miss loads the same key"),
    (">= MAX_CACHED_KEYS", "> MAX_CACHED_KEYS", "one cached key more is a memory bound only"),
    ("CONSUMED or record is None", "CONSUMED and record is None", "a record iff consumed"),
    ('"behind" if skew > 0', '"behind" if skew >= 0', "a skew of 0 is never refused"),
    # JOSE header memo: memoized or decoded again, the header is the same
    ("<= _MEMO_HEADER_CHARS", "< _MEMO_HEADER_CHARS", "memoized or not: the same header"),
    (
        "if len(segment) <= _MEMO_HEADER_CHARS else",
        "if (len(segment) <= _MEMO_HEADER_CHARS) and False else",
        "memoized or not: the same header",
    ),
    (
        "if len(segment) <= _MEMO_HEADER_CHARS else",
        "if (len(segment) <= _MEMO_HEADER_CHARS) or True else",
        "memoized or not: the same header",
    ),
)
# strict JSON: the walk's pre-filters may only walk more often (the walk decides), and the
# per-thread decoder cache may only miss (a miss builds the same decoder again)
_EQUIVALENT += (
    ("len(text) > limits.max_string_chars", "len(text) >= limits.max_string_chars",
     "the walk also checks strings one character earlier: it refuses nothing more"),
    ('"\\\\u" in text and _ESCAPED', '"\\\\u" in text or _ESCAPED',
     "the search finds no escaped surrogate in a text without \\u"),
    ("if brackets > limits.max_depth or", "if brackets >= limits.max_depth or",
     "the walk runs one bracket earlier: it refuses nothing more"),
    ('getattr(_decoders, "by_limits", None)', "None", "a cache miss builds the same decoder"),
    ("if cache is None:", "if cache is not None:", "a cache miss builds the same decoder"),
    ("getattr(_decoders,", "getattr(None,", "a cache miss builds the same decoder"),
    ("bounded = cache.get(limits)", "bounded = None", "a cache miss builds the same decoder"),
    ("cache.get(limits)", "cache.get(None)", "a cache miss builds the same decoder"),
)  # fmt: skip
# an enrolled JWK always has x and y (enrollment parses it): their .get() defaults are unused
_EQUIVALENT += tuple(
    (f'jwk.get("{c}", "")', f'jwk.get("{c}", {d})', "an enrolled JWK has x and y")
    for c in "xy"
    for d in ("None", "", '"XXXX"')
)


def stage(target: Path) -> None:
    """Copy what the tests need into ``target`` (without caches or earlier mutants)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".hypothesis")
    for name in COPY:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(source, target / name)
    # mutmut copies tests/ itself, following links: drop the links in the OS fixture trees
    # that dangle by design (the recordings themselves stay: policy tests read them)
    for link in (target / "tests" / "fixtures").rglob("*"):
        if link.is_symlink() and not link.exists():
            link.unlink()


def narrow(workdir: Path, patterns: tuple[str, ...]) -> None:
    """Mutate only the staged files whose mutants ``patterns`` can name (mutmut would generate
    mutants for every configured file first, which is most of a bounded run's time)."""
    pyproject = workdir / "pyproject.toml"
    configured = tomllib.loads(pyproject.read_text())["tool"]["mutmut"]["only_mutate"]
    prefixes = [re.split(r"\.(?:x|\*)", p, maxsplit=1)[0] for p in patterns]
    files = []
    for path in sorted({f for glob in configured for f in workdir.glob(glob)}):
        module = ".".join(path.relative_to(workdir).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        if any("*" in p or module == p or module.startswith(p + ".") for p in prefixes):
            files.append(path.relative_to(workdir).as_posix())
    listed = "only_mutate = [" + "".join(f'\n  "{f}",' for f in files) + "\n]"
    text = re.sub(r"(?ms)^only_mutate = \[.*?^\]", lambda _: listed, pyproject.read_text())
    pyproject.write_text(text)


def run(workdir: Path, patterns: tuple[str, ...], max_children: int) -> dict[str, str]:
    """``mutmut run`` then ``mutmut results --all``: mutant name -> status."""
    mutmut = [sys.executable, "-m", "mutmut"]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run(
        [*mutmut, "run", "--max-children", str(max_children), *patterns],
        cwd=workdir,
        env=env,
        check=False,
    )
    done = subprocess.run(
        [*mutmut, "results", "--all", "true"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    statuses = {}
    for line in done.stdout.splitlines():
        match = _LINE.match(line)
        if match:
            statuses[match.group(1)] = match.group(2)
    return statuses


_SHOW_DIFFS = """
import json, sys
from mutmut.__main__ import find_mutant, get_diff_for_mutant
out = {}
for name in sys.argv[1:]:
    text = get_diff_for_mutant(name, path=find_mutant(name).path).splitlines()
    out[name] = (
        [x[1:].strip() for x in text if x.startswith("-") and not x.startswith("---")],
        [x[1:].strip() for x in text if x.startswith("+") and not x.startswith("+++")],
    )
print(json.dumps(out))
"""


def diffs(workdir: Path, names: list[str]) -> dict[str, tuple[list[str], list[str]]]:
    """The removed and added source lines of each mutant, in one mutmut process."""
    if not names:
        return {}
    shown = subprocess.run(
        [sys.executable, "-c", _SHOW_DIFFS, *names],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    answer: dict[str, tuple[list[str], list[str]]] = json.loads(shown.stdout.splitlines()[-1])
    return answer


def _fold(line: str) -> str:
    return line.replace('"', "'").casefold()


def _replace_each(line: str, old: str, new: str) -> set[str]:
    """``line`` with one occurrence of ``old`` replaced by ``new``, for each occurrence."""
    found = [m.start() for m in re.finditer(re.escape(old), line)]
    return {line[:i] + new + line[i + len(old) :] for i in found}


def classify(removed: list[str], added: list[str]) -> str:
    """``message``, ``equivalent`` or ``check`` for one surviving mutant's diff."""
    if len(removed) != len(added) or not removed:
        return "check"
    kinds = set()
    for old, new in zip(removed, added, strict=True):
        text_only = 'b"XX' not in new and "b'XX" not in new  # bytes are data, not text
        if text_only and _fold(old) == _fold(new.replace("XX", "")):
            kinds.add("message")  # string text or letter case only (also "ascii"/"ASCII")
        elif _STRING.sub("None", old) == new and (
            old.startswith("raise") or "_json_object(" in old
        ):
            kinds.add("message")  # an error message (or its subject) replaced by None
        elif any(new in _replace_each(old, a, b) for a, b, _ in _EQUIVALENT):
            kinds.add("equivalent")
        else:
            return "check"
    return "equivalent" if "equivalent" in kinds else "message"


def main(argv: list[str] | None = None) -> int:
    """Run, print the score and the survivors; 1 if an unexplained mutant survives."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="every configured module")
    parser.add_argument(
        "--only", action="append", metavar="PATTERN", help="mutant names, as server.policy.*"
    )
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="stage here and keep it (for mutmut show)")
    args = parser.parse_args(argv)
    patterns = tuple(args.only or ()) or (() if args.full else CI_PATTERNS)
    with tempfile.TemporaryDirectory(prefix="mutation-") as scratch:
        workdir = args.keep or Path(scratch) / "repo"
        if not (workdir / "pyproject.toml").exists():
            stage(workdir)
            if patterns:
                narrow(workdir, patterns)
        statuses = run(workdir, patterns, args.max_children)
        if patterns:
            statuses = {
                k: v for k, v in statuses.items() if any(re.fullmatch(
                    p.replace(".", r"\.").replace("*", ".*"), k) for p in patterns)
            }  # fmt: skip
        counts = Counter(statuses.values())
        survivors = sorted(k for k, v in statuses.items() if v not in ("killed", "timeout"))
        kinds = {k: classify(*lines) for k, lines in diffs(workdir, survivors).items()}
        killed = counts["killed"] + counts["timeout"]
        total = len(statuses)
        checks = total - sum(1 for k in kinds.values() if k != "check")
        print(f"mutants: {total}, killed: {killed}, score: {killed / max(total, 1):.1%}")
        print(
            f"check mutants (excluding message-only and equivalent): {checks}, killed: "
            f"{killed}, score: {killed / max(checks, 1):.1%}"
        )
        print("statuses: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        for kind in ("check", "equivalent", "message"):
            for name in (k for k in survivors if kinds[k] == kind):
                print(f"  {kind}: {statuses[name]}: {name}")
        if total == 0:
            print("no mutants were run: check [tool.mutmut] in pyproject.toml", file=sys.stderr)
            return 1
        return 1 if "check" in kinds.values() and not args.full else 0


if __name__ == "__main__":
    raise SystemExit(main())
