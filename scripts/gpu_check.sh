#!/usr/bin/env bash
# The GPU check of spikegen-splat, in ONE command on a bare H100/H200 machine (its own python3 with torch, no
# network): install the project and the wheels in .whl/, build gsplat 1.4.0's CUDA extension, train spikegen-splat
# and splatfacto (spikegen-baseline on the blurred RGB frames) on CUDA on the sample scene and a room scene at the
# spike sensor's native 400x250, run scripts/bench/compare_gsplat.py (our CPU rasteriser vs gsplat), and write the tables
# and figures to benchmarks/ (gpu_check_nvs.{md,json}, figures/gpu_check_nvs_*.png, rasterizer_vs_gsplat.{md,json});
# with $OUT set, also $OUT/gpu_check_results.tgz and $OUT/gpu_check.log.
#
#   bash scripts/gpu_check.sh --fetch-wheels   # here, with PyPI: what the GPU machine lacks (scripts/gpu_wheels.txt)
#                                              # as cp312 wheels into .whl/ (ignored by git; ~30 MB)
#   bash scripts/gpu_check.sh                  # there: the device call carries .whl (carry: [".whl"]); ~8 min
#   bash scripts/gpu_check.sh --dry-run        # CPU, anywhere: every step on tiny scenes into a temporary folder
#                                              # (tests/scripts/test_gpu_check.py runs it, so the script cannot rot)
# Environment: GPU_CHECK_STEPS (training iterations, default 1000), GPU_CHECK_WORK (scratch folder), PYTHON.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
MODE=full
case "${1:-}" in
  --dry-run) MODE=dry ;;
  --fetch-wheels) MODE=fetch ;;
  "") ;;
  *) echo "usage: bash scripts/gpu_check.sh [--dry-run | --fetch-wheels]" >&2; exit 2 ;;
esac
WHEELS=$(grep -v '^#' scripts/gpu_wheels.txt | sed 's/ *#.*//' | grep -v '^$')

if [[ $MODE == fetch ]]; then
  PY=${PYTHON:-python3}
  platforms=()
  for n in 39 38 36 35 34 31 28 27 24 17; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
  mkdir -p .whl
  for spec in $WHEELS; do
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      "${platforms[@]}" --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$spec"
  done
  echo "[gpu_check] $(ls .whl/*.whl | wc -l) wheels in .whl ($(du -sh .whl | cut -f1)); now, on the GPU machine:"
  echo "            bash scripts/gpu_check.sh   (device call with carry [\".whl\"], timeout_s 600)"
  exit 0
fi

if [[ $MODE == dry ]]; then
  PY=${PYTHON:-python}
  WORK=${GPU_CHECK_WORK:-$(mktemp -d -t spikegen_gpu_check.XXXXXX)}
  BENCH=$WORK/benchmarks
  STEPS=3
  DEVICE=cpu
  THREADS=1
  # Tiny scenes (the same kinds and code paths) and a tiny rasteriser comparison.
  SCENE_ARGS=(--scene width=32 height=24 num_train=4 num_test=1 window=16 subframes=3 supersample=1
              texture_size=32 seed_points=200 num_objects=3)
  COMPARE_ARGS=(--dry-run --sizes 300 --cams 1 --repeat 1 --threads 1)
else
  PY=${PYTHON:-python3}
  WORK=${GPU_CHECK_WORK:-/tmp/spikegen_gpu_check}
  BENCH=$REPO/benchmarks
  STEPS=${GPU_CHECK_STEPS:-1000}
  DEVICE=cuda
  THREADS=4
  SCENE_ARGS=()
  COMPARE_ARGS=(--sizes 10000 50000 --cams 1 4 --repeat 3 --threads "$(nproc)")
fi
mkdir -p "$WORK" "$BENCH"
LOG=$WORK/gpu_check.log
: > "$LOG"
export PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE
T0=$(date +%s)
declare -a DONE=()

say() { echo "[gpu_check] $*" | tee -a "$LOG"; }
step() {  # step NAME TIMEOUT_S COMMAND...: run, log, time; a failure stops the check with the step's name
  local name=$1 limit=$2; shift 2
  local t=$(date +%s)
  say "step $name: $*"
  if ! timeout "$limit" "$@" 2>&1 | tee -a "$LOG"; then
    say "FAILED at step $name after $(( $(date +%s) - t )) s (log: $LOG)"
    exit 1
  fi
  DONE+=("$name $(( $(date +%s) - t ))s")
}

# 1. The machine.
say "mode $MODE, work $WORK, results $BENCH, $STEPS iterations per run, device $DEVICE"
step environment 60 "$PY" -c "
import platform, torch
print('python', platform.python_version(), '| torch', torch.__version__, '| CUDA', torch.version.cuda,
      '| GPU', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
if '$DEVICE' == 'cuda' and not torch.cuda.is_available():
    raise SystemExit('no CUDA device: run the GPU check on a GPU machine, or use --dry-run')"

# 2. Install: the wheels the machine lacks, and the project itself from the working tree.
SITE=$WORK/site
if [[ $MODE == full ]]; then
  ls .whl/*.whl >/dev/null 2>&1 || { say "no .whl/: run 'bash scripts/gpu_check.sh --fetch-wheels' here first"; exit 1; }
  step install 180 "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --upgrade \
    --target "$SITE" .whl/*.whl "$REPO"
  export PYTHONPATH=$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}
  export PATH=$SITE/bin:$PATH
else  # the same names must be real distributions (installed here), and pip must be able to install offline
  step install 60 "$PY" -c "
import importlib.metadata as md, sys
names = '''$WHEELS'''.split()
missing = [n for n in names if not any(d.metadata['Name'].lower().replace('_', '-') == n.split('==')[0].lower().replace('_', '-')
                                       for d in md.distributions())]
if missing: sys.exit(f'scripts/gpu_wheels.txt names distributions not installed here: {missing}')
print(len(names), 'wheels listed, all installed here')"
  step pip 60 "$PY" -m pip --version
  export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
fi

# 3. Everything the check imports, before minutes of building (the dry run only locates them: its train step
#    imports them all anyway).
MODULES="gsplat nerfstudio.engine.trainer skimage.data spikegen_core.data.scene spikegen_nvs.config tyro viser"
if [[ $MODE == full ]]; then
  step imports 120 "$PY" -c "
import importlib
for m in '$MODULES'.split(): importlib.import_module(m)
import gsplat; print('gsplat', gsplat.__version__)"
else
  step imports 60 "$PY" -c "
import importlib.util
missing = [m for m in '$MODULES'.split() if importlib.util.find_spec(m.split('.')[0]) is None]
assert not missing, f'not importable: {missing}'
print('all located')"
fi

# 4. gsplat's CUDA extension (JIT, minutes) while the scenes are rendered on the CPU.
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export MAX_JOBS=${MAX_JOBS:-$(nproc)} TORCH_EXTENSIONS_DIR=$WORK/torch_extensions
BENCH_ARGS=(--kinds orbit room-native --seeds 0 --arms spikegen-splat blur --steps "$STEPS" --device "$DEVICE"
            --threads "$THREADS" --work "$WORK/bench_nvs" --out "$BENCH/gpu_check_nvs"
            --figures "$BENCH/figures" --views 0 3 "${SCENE_ARGS[@]}")
"$PY" scripts/bench/bench_nvs.py "${BENCH_ARGS[@]}" --generate-only > "$WORK/scenes.log" 2>&1 &
SCENES_PID=$!
if [[ $MODE == full ]]; then
  step gsplat-build 420 "$PY" -c "
from gsplat.cuda._backend import _C
assert _C is not None, 'gsplat CUDA extension did not build: see the compiler output above'
print('gsplat CUDA extension ready')"
else  # no CUDA: only check that the module the build starts from is there (importing it would start nvcc)
  step gsplat-build 60 "$PY" -c "
import importlib.util, pathlib
root = pathlib.Path(importlib.util.find_spec('gsplat').submodule_search_locations[0])
assert (root / 'cuda' / '_backend.py').is_file() and list((root / 'cuda' / 'csrc').glob('*.cu')), root
print('gsplat build skipped (dry run):', len(list((root / 'cuda' / 'csrc').glob('*.cu'))), 'CUDA sources found')"
fi
if ! wait "$SCENES_PID"; then cat "$WORK/scenes.log" | tee -a "$LOG"; say "FAILED at step scenes"; exit 1; fi
cat "$WORK/scenes.log" >> "$LOG"
DONE+=("scenes (during the build)")

# 5. Train and score spikegen-splat and splatfacto on both scenes; tables + one figure per scene kind.
step train 600 "$PY" scripts/bench/bench_nvs.py "${BENCH_ARGS[@]}" --reuse

# 6. Our CPU rasteriser against gsplat's CUDA one (parity of images and gradients, speed).
step compare-gsplat 300 "$PY" scripts/bench/compare_gsplat.py "${COMPARE_ARGS[@]}" --out "$BENCH/rasterizer_vs_gsplat"

# 7. Results in one archive (the device tool returns at most 8 files).
ARCHIVE=$WORK/gpu_check_results.tgz
step pack 60 tar czf "$ARCHIVE" -C "$BENCH" gpu_check_nvs.md gpu_check_nvs.json rasterizer_vs_gsplat.md \
  rasterizer_vs_gsplat.json figures
if [[ -n "${OUT:-}" && -d "${OUT:-}" ]]; then cp "$ARCHIVE" "$LOG" "$OUT/"; fi
say "done in $(( $(date +%s) - T0 )) s: ${DONE[*]}"
say "results: $BENCH/gpu_check_nvs.md, $BENCH/rasterizer_vs_gsplat.md, $ARCHIVE"
