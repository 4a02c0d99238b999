#!/usr/bin/env bash
# The GPU path in one go: the `cuda` tests, then one timed FER2013-sized epoch
# (28,709 synthetic 48x48 images) for alternated, RI, IR and mobilenetv2_100,
# printed as a table of images/s, achieved TFLOP/s and peak memory.
# Meant to finish in under 5 minutes on one H100. See docs/gpu.md.
#
#   scripts/gpu_check.sh                           # on a CUDA machine
#   GPU_CHECK_ALLOW_CPU=1 scripts/gpu_check.sh     # smoke run of the script on a CPU (tiny data)
#
# Environment: PYTHON (default python3), GPU_CHECK_OUT (default test-artifacts/gpu_check),
# GPU_CHECK_N (synthetic images; default 41013, FER2013's training split after 70/15/15).
# Python packages the machine lacks (fvcore, sqlalchemy, ... ) may come as wheels in .whl/:
# they are installed offline into a private folder; tests that need a missing one skip.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT_DIR=${GPU_CHECK_OUT:-test-artifacts/gpu_check}
mkdir -p "$OUT_DIR"
started=$(date +%s)

if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/harness-site .whl/*.whl
    export PYTHONPATH=/tmp/harness-site${PYTHONPATH:+:$PYTHONPATH}
fi

# The harness from this checkout: installed editable without dependencies (the machine
# may be offline), or put on the path if pip cannot.
here=$(pwd -P)
if ! "$PY" -c "import harness, sys; sys.exit(not harness.__file__.startswith('$here/'))" 2>/dev/null; then
    "$PY" -m pip install -q -e . --no-deps --no-build-isolation 2>/dev/null ||
        export PYTHONPATH=$here${PYTHONPATH:+:$PYTHONPATH}
fi

"$PY" - <<'EOF'
import importlib.util
missing = [m for m in ("fvcore", "sqlalchemy", "pandas", "timm") if importlib.util.find_spec(m) is None]
if missing:
    print(f"gpu_check: not installed: {', '.join(missing)} (tests needing them skip; see docs/gpu.md)")
EOF

has_cuda=$("$PY" -c "import torch; print(int(torch.cuda.is_available()))")
if [[ $has_cuda == 1 ]]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    epoch_args=(--device cuda ${GPU_CHECK_N:+--n "$GPU_CHECK_N"})
elif [[ ${GPU_CHECK_ALLOW_CPU:-0} == 1 ]]; then
    echo "gpu_check: no CUDA device; smoke run on the CPU (cuda tests skip, tiny data, one thread)"
    export OMP_NUM_THREADS=1
    epoch_args=(--device cpu --n "${GPU_CHECK_N:-300}" --archs RI,timm:mobilenetv2_100)
else
    echo "gpu_check: torch sees no CUDA device (set GPU_CHECK_ALLOW_CPU=1 for a smoke run)" >&2
    exit 2
fi

echo "== cuda tests"
set +e
"$PY" -m pytest tests/test_cuda.py -m cuda -q -rs -p no:cacheprovider \
    --junitxml="$OUT_DIR/cuda_tests.xml" 2>&1 | tee "$OUT_DIR/cuda_tests.log"
tests_status=${PIPESTATUS[0]}
set -e

echo "== one FER2013-sized epoch per network"
set +e
"$PY" scripts/gpu_epoch.py "${epoch_args[@]}" --json "$OUT_DIR/gpu_epoch.json" 2>&1 |
    tee "$OUT_DIR/gpu_epoch.log"
epoch_status=${PIPESTATUS[0]}
set -e

echo "gpu_check: cuda tests exit $tests_status, epoch exit $epoch_status, $(($(date +%s) - started)) s; logs in $OUT_DIR"
exit $((tests_status != 0 || epoch_status != 0))
