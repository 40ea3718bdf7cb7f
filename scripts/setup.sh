#!/usr/bin/env bash
# Set up archsearch on a fresh machine: a CPU build of torch if no torch is installed yet, then
# archsearch itself (editable). `bash scripts/setup.sh test` adds the test extras.
#
# A torch that is already installed (CUDA or CPU) is kept. Otherwise we never let pip pick the
# default torch wheel, which pulls several GB of CUDA packages: we take a local CPU wheel when
# pip's find-links has one, else the PyTorch CPU index.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
PIP=("$PY" -m pip install --disable-pip-version-check -q)

if ! "$PY" -c "import torch" 2>/dev/null; then
  if "$PY" -m pip install --dry-run --no-deps --no-index "torch==2.13.0" >/dev/null 2>&1; then
    echo "setup: installing the local CPU build of torch 2.13.0"
    "${PIP[@]}" "torch==2.13.0"
  else
    echo "setup: installing torch from the PyTorch CPU index"
    "${PIP[@]}" torch --index-url https://download.pytorch.org/whl/cpu
  fi
fi

if [ "${1:-}" = "test" ]; then
  "${PIP[@]}" -e ".[test]"
else
  "${PIP[@]}" -e .
fi
"$PY" -c "import torch, archsearch; print('setup: archsearch', archsearch.__version__, '| torch', torch.__version__)"
