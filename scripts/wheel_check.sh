#!/usr/bin/env bash
# A non-editable install works away from the repository: build the wheel, install it into a fresh
# virtual environment outside the checkout, and run from an empty folder the quickstart's help,
# `archsearch doctor`, `archsearch profile` on an example model with the default profile (the
# shipped `cpu` preset) and a one-trial search of the shipped `quickstart` space at a tiny budget.
#
# The environment reuses the packages already installed (--system-site-packages: torch, optuna, ...
# are not downloaded); the wheel is installed with --no-deps --ignore-installed, and the check
# fails unless `archsearch` imports from the environment's copy (an editable install of the
# checkout, visible through the system site-packages, must not be the one that answers).
# One line per step; exit status 1 on the first failure (its output is printed). Run by .ci/run.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python3}"
unset PYTHONPATH
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
LOG="$TMP/step.log"
START=$SECONDS

step() {  # step NAME COMMAND...: run it, print one line, stop with its output on failure
  local name="$1" t0=$SECONDS
  shift
  if "$@" >"$LOG" 2>&1; then
    echo "wheel_check: ok    $name ($((SECONDS - t0)) s)"
  else
    echo "wheel_check: FAIL  $name (exit $?): $*"
    tail -n 40 "$LOG"
    exit 1
  fi
}

# Build from a copy of what the wheel is made of, so no build/ or *.egg-info lands in the checkout
# (and a stale build/ cannot slip old files into the wheel).
mkdir -p "$TMP/src" "$TMP/dist" "$TMP/work"
tar -C "$ROOT" --exclude=__pycache__ --exclude='*.egg-info' -cf - pyproject.toml README.md archsearch \
  | tar -C "$TMP/src" -xf -
step "build the wheel" "$PY" -m pip wheel --disable-pip-version-check --no-deps -q -w "$TMP/dist" "$TMP/src"
WHEEL="$(ls "$TMP"/dist/archsearch-*.whl)"
check_wheel() {  # every shipped YAML is in the wheel as a real file
  "$PY" - "$WHEEL" "$ROOT" <<'EOF'
import sys, zipfile
from pathlib import Path
wheel, root = sys.argv[1], Path(sys.argv[2])
names = set(zipfile.ZipFile(wheel).namelist())
want = sorted(p.relative_to(root).as_posix() for p in (root / "archsearch" / "data").rglob("*.yaml"))
missing = [w for w in want if w not in names]
assert want and not missing, f"missing from the wheel: {missing}"
for w in want:  # a file, not a link: same bytes as the checkout's
    assert zipfile.ZipFile(wheel).read(w) == (root / w).read_bytes(), w
print(f"{len(want)} shipped YAML files")
EOF
}
step "the wheel ships the profiles and spaces" check_wheel
echo "wheel_check: $(basename "$WHEEL"): $(cat "$LOG")"

VENV="$TMP/venv"
step "a fresh venv (system site-packages)" "$PY" -m venv --system-site-packages "$VENV"
step "install the wheel" "$VENV/bin/python" -m pip install --disable-pip-version-check -q \
  --no-deps --ignore-installed "$WHEEL"
export PATH="$VENV/bin:$PATH"
cd "$TMP/work"

where() {  # archsearch must import from the venv, not from the checkout
  python -c 'import archsearch; print(archsearch.__file__)'
  python -c 'import archsearch, sys; sys.exit(not archsearch.__file__.startswith(sys.argv[1]))' "$VENV/"
}
step "archsearch imports from the venv" where
echo "wheel_check: archsearch.__file__ = $(head -n 1 "$LOG")"
step "archsearch quickstart --help" archsearch quickstart --help
step "archsearch doctor" archsearch doctor -o runs
grep -E "^(ok|warn) +(profiles|spaces) " "$LOG" | sed 's/^/wheel_check:   doctor: /'
cp "$ROOT/models/tiny-softmax.yaml" .
step "archsearch profile tiny-softmax.yaml --metrics flops (default profile)" \
  archsearch profile tiny-softmax.yaml --metrics flops
step "archsearch search quickstart --trials 1 (tiny budget)" \
  archsearch search quickstart --trials 1 --budget-tokens 2k --rungs 1 -O eval_tokens=1024 \
  -o runs/quickstart --json
step "the search wrote its report" test -s runs/quickstart/report/report.md
echo "wheel_check: all steps passed in $((SECONDS - START)) s"
