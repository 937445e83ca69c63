#!/usr/bin/env bash
# Build the envattest agent binary for this OS into dist/ (see packaging/README.md).
#
#   packaging/build.sh            one file:   dist/envattest (dist/envattest.exe on Windows)
#   packaging/build.sh --onedir   one folder: dist/envattest/envattest (faster start-up)
#
# Uses PYTHON if set, else .venv's Python, else python3. Works in Git Bash on Windows.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

mode=onefile
for arg in "$@"; do
  case "$arg" in
    --onedir) mode=onedir ;;
    --onefile) mode=onefile ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown option $arg (use --onefile or --onedir)" >&2; exit 2 ;;
  esac
done

if [[ -n "${PYTHON:-}" ]]; then
  py=$PYTHON
elif [[ -x .venv/bin/python ]]; then
  py=.venv/bin/python
elif [[ -x .venv/Scripts/python.exe ]]; then
  py=.venv/Scripts/python.exe
else
  py=python3
fi

if ! "$py" -c "import PyInstaller" 2>/dev/null; then
  echo "build.sh: PyInstaller is not installed for $py; run: $py -m pip install -e '.[dev]'" >&2
  exit 1
fi

# One version: attest.__version__, which must agree with pyproject.toml.
version=$("$py" - <<'PY'
import sys, tomllib
import attest
with open("pyproject.toml", "rb") as f:
    declared = tomllib.load(f)["project"]["version"]
if declared != attest.__version__:
    sys.exit(f"pyproject.toml version {declared} != attest.__version__ {attest.__version__}")
print(attest.__version__)
PY
)

exe_suffix=""
case "$(uname -s 2>/dev/null || echo Windows)" in
  MINGW*|MSYS*|CYGWIN*|Windows*) exe_suffix=".exe" ;;
esac

if [[ $mode == onedir ]]; then
  export ENVATTEST_ONEDIR=1
  rm -rf "dist/envattest" "dist/envattest$exe_suffix"
  binary="dist/envattest/envattest$exe_suffix"
else
  export ENVATTEST_ONEDIR=0
  rm -rf "dist/envattest"
  binary="dist/envattest$exe_suffix"
fi

echo "building envattest $version ($mode) with $("$py" -c 'import sys; print(sys.version.split()[0])')"
"$py" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$root/dist" --workpath "$root/build/pyinstaller-$mode" \
  packaging/envattest.spec

reported=$("$binary" --version)
if [[ "$reported" != "envattest $version" ]]; then
  echo "build.sh: $binary --version says '$reported', expected 'envattest $version'" >&2
  exit 1
fi
size=$(du -sh "${binary%/envattest$exe_suffix}" 2>/dev/null | cut -f1)
[[ $mode == onefile ]] && size=$(du -h "$binary" | cut -f1)
echo "built $binary ($reported, $size)"
