#!/usr/bin/env bash
# Build the envattest agent binary for this OS into dist/ (see packaging/README.md).
#
#   packaging/build.sh            one file:   dist/envattest (dist/envattest.exe on Windows)
#   packaging/build.sh --onedir   one folder: dist/onedir/envattest/envattest (faster start-up)
#   --with-tpm                    include TPM 2.0 support (Linux; needs tpm2-pytss installed)
#
# Uses PYTHON if set, else .venv's Python, else python3. Works in Git Bash on Windows.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

mode=onefile
export ENVATTEST_WITH_TPM=0
for arg in "$@"; do
  case "$arg" in
    --onedir) mode=onedir ;;
    --onefile) mode=onefile ;;
    --with-tpm) ENVATTEST_WITH_TPM=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown option $arg (use --onefile, --onedir, --with-tpm)" >&2; exit 2 ;;
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
if [[ $ENVATTEST_WITH_TPM == 1 ]] && ! "$py" -c "import tpm2_pytss" 2>/dev/null; then
  echo "build.sh: --with-tpm needs tpm2-pytss: $py -m pip install -e '.[tpm]' (needs libtss2-dev)" >&2
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
  distpath=$root/dist/onedir
  binary="dist/onedir/envattest/envattest$exe_suffix"
else
  export ENVATTEST_ONEDIR=0
  distpath=$root/dist
  binary="dist/envattest$exe_suffix"
fi

echo "building envattest $version ($mode, tpm=$ENVATTEST_WITH_TPM) with $("$py" -c 'import sys; print(sys.version.split()[0])')"
"$py" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$distpath" --workpath "$root/build/pyinstaller-$mode" \
  packaging/envattest.spec

reported=$("$binary" --version)
if [[ "$reported" != "envattest $version" ]]; then
  echo "build.sh: $binary --version says '$reported', expected 'envattest $version'" >&2
  exit 1
fi
if [[ $mode == onedir ]]; then
  size=$(du -sh "dist/onedir/envattest" | cut -f1)
else
  size=$(du -h "$binary" | cut -f1)
fi
echo "built $binary ($reported, $size)"
