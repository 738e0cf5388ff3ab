#!/usr/bin/env bash
# Every GPU check of the performance work in two short commands, for a machine with CuPy and a
# GPU and little time on it (each part is sized to finish within 10 minutes):
#
#   bash benchmarks/gpu_session.sh checks   # self-test, GPU tests, step benchmarks (~6 min)
#   bash benchmarks/gpu_session.sh full     # full-size MMN isotropic run, PDE and SGD (~8 min)
#
# Results go to $OUT (default gpu-results/): one text file per check and summary.txt with the
# exit status and wall time of each. The machine needs numpy, scipy, h5py, matplotlib, tqdm,
# pytest, hypothesis, xarray and numba (with numba-cuda for the GPU kernel of the particle
# engine); the packages it may lack can travel as wheels in .whl/ (git-ignored), fetched on
# any machine with pip:
#
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl \
#       array-api-compat==1.16.0 array-api-strict==2.6.1 tomli-w h5netcdf numba llvmlite \
#       numba-cuda
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/meanfield-site .whl/*.whl || exit 1
    export PYTHONPATH="$PYTHONPATH:/tmp/meanfield-site"
fi
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import cupy, numpy; print('cupy', cupy.__version__, 'numpy', numpy.__version__)"
    nproc
} 2>&1 | tee "$OUT/machine.txt"

# step NAME LIMIT_S COMMAND...: run under a time limit, keep its output, log status and time
step() {
    local name=$1 limit=$2 start rc
    shift 2
    echo "== $name (limit ${limit} s)"
    start=$(date +%s)
    timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.txt"
    rc=${PIPESTATUS[0]}
    echo "$name: exit $rc, $(($(date +%s) - start)) s" | tee -a "$OUT/summary.txt"
}

case "${1:-checks}" in
checks)
    # CuPy against NumPy on every model, and whether each fused kernel compiled
    step selftest 150 python3 -m compare.cli info --selftest --backend cupy
    # every test with a CuPy case (the backend fixture) and the GPU-only tests, among them
    # the GPU kernel of the particle engine against the CPU kernel
    step gpu-tests 150 python3 -m pytest -q -x -p no:cacheprovider -k "cupy or gpu" tests
    # PDE steps per second, floor ratio, bandwidth roofline and FP64 fraction
    step pde-step 90 python3 benchmarks/pde_step.py --backend cupy
    # the GPU kernel of the SGD ensemble against NumPy with 2 BLAS threads, the NumPy step on
    # CuPy and PyTorch (CUDA and CPU)
    step sgd-step 120 python3 benchmarks/sgd_step.py --backend cupy --reference-threads 2 \
        --steps 2000 --numpy-steps 100
    ;;
full)
    # the paper's full-size MMN isotropic run on the GPU: the PDE to t = 20 (9,600 cells) and
    # 8 x 800 units of one-pass SGD, 2e7 steps of eps = 1e-6 (10.8 min on 2 CPU cores)
    python3 - "$OUT/full.toml" <<'PY'
import sys
text = open("data/configs/full/mmn-isotropic.toml").read()
text = text.replace('backend = "auto"', 'backend = "cupy"')
open(sys.argv[1], "w").write(text)
PY
    step full-run 540 python3 -m compare.cli run "$OUT/full.toml" -o "$OUT/full.h5" --quiet
    step full-sgd-rate 60 python3 benchmarks/sgd_step.py --backend cupy --replicas 8 --n 800 \
        --steps 20000 --numpy-steps 50
    ;;
*)
    echo "usage: bash benchmarks/gpu_session.sh [checks|full]" >&2
    exit 2
    ;;
esac
