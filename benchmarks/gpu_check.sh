#!/usr/bin/env bash
# Everything in archsearch that needs CUDA, in one command that fits in 8 minutes on one
# H100/H200, writing its figures under reports/gpu/ with the device named:
#   1. pytest -m gpu                       (the GPU tests)
#   2. archsearch profile models/gpt2-small.yaml -p PROFILE -T 1k,4k,16k
#                                          (measured peak memory vs the fake-tensor estimate,
#                                          CUDA-event latency, MFU)
#   3. benchmarks/mixer_throughput.py      (every mixer vs softmax, bf16, 4K-32K)
#   4. with --claims: archsearch claims --scale gpu (the claims report's GPU column)
# Without a CUDA device it says so and exits 0 having written nothing.
#
# Usage: bash benchmarks/gpu_check.sh [--profile h200-bf16] [--out reports/gpu] [--claims]
#                                     [--claims-minutes 5] [--dry-run] [--help]
set -uo pipefail
cd "$(dirname "$0")/.."

PROFILE=h200-bf16
OUT=reports/gpu
CLAIMS=0
CLAIMS_MINUTES=5
DRY=0
PY="${PYTHON:-python3}"

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
bad() { echo "error: $1" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --profile) [ $# -ge 2 ] || bad "--profile: missing; allowed: a profile name or YAML"
               PROFILE="$2"; shift 2 ;;
    --out) [ $# -ge 2 ] || bad "--out: missing; allowed: a folder"
           OUT="$2"; shift 2 ;;
    --claims) CLAIMS=1; shift ;;
    --claims-minutes)
      [ $# -ge 2 ] || bad "--claims-minutes: missing; allowed: a whole number of minutes, 1-8"
      case "$2" in [1-8]) CLAIMS_MINUTES="$2" ;;
        *) bad "--claims-minutes: got '$2'; allowed: a whole number of minutes, 1-8" ;; esac
      shift 2 ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) bad "got '$1'; allowed: --profile NAME, --out DIR, --claims, --claims-minutes N, --dry-run, --help" ;;
  esac
done

STEPS=(
  "pytest|$PY -m pytest -m gpu -q -p no:cacheprovider"
  "profile|$PY -m archsearch profile models/gpt2-small.yaml -p $PROFILE -T 1k,4k,16k --no-fvcore --json"
  "throughput|$PY benchmarks/mixer_throughput.py --lengths 4k,8k,16k,32k --dtype bfloat16"
)
if [ "$CLAIMS" = 1 ]; then
  STEPS+=("claims|timeout -s INT $((CLAIMS_MINUTES * 60)) $PY -m archsearch claims --scale gpu --profile $PROFILE --workers 4 --threads 2 -o $OUT/claims")
fi

if [ "$DRY" = 1 ]; then
  for s in "${STEPS[@]}"; do echo "gpu_check: would run ${s%%|*}: ${s#*|}"; done
  exit 0
fi

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu_check: skipped: no CUDA device here (torch.cuda.is_available() is False); nothing written"
  exit 0
fi

mkdir -p "$OUT"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
    | sed 's/^/gpu: /'
  "$PY" -c "import torch; print('torch:', torch.__version__, 'cuda', torch.version.cuda)"
  echo "profile: $PROFILE"
} > "$OUT/device.txt"
cat "$OUT/device.txt"

status=0
start=$(date +%s)
for s in "${STEPS[@]}"; do
  name="${s%%|*}"; cmd="${s#*|}"
  t0=$(date +%s)
  if [ "$name" = profile ]; then
    eval "$cmd" > "$OUT/$name.json" 2> "$OUT/$name.log"; rc=$?
  else
    eval "$cmd" > "$OUT/$name.log" 2>&1; rc=$?
  fi
  # a claims run stopped by its time limit saves what finished: not a failure
  [ "$name" = claims ] && [ "$rc" = 130 ] && rc=0
  echo "gpu_check: $name: exit $rc in $(( $(date +%s) - t0 )) s -> $OUT/$name.*"
  [ "$rc" = 0 ] || status=1
done
echo "gpu_check: all steps in $(( $(date +%s) - start )) s; figures in $OUT/ (device.txt names the GPU)"
exit $status
