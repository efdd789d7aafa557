#!/usr/bin/env bash
# Long, resumable CPU fine-tuning of the shipped `natural` checkpoint (spikegen_core/assets/spikegen_natural.md), in
# the background at nice 19 with 1 torch thread. Rerunning the same command resumes from the newest rotating
# checkpoint with the data stream of an uninterrupted run; a better EMA is exported by hand (see the model card).
#
#   source .venv/bin/activate
#   SPIKEGEN_SHARED_DATA=/path/to/shared/data bash scripts/dev/finetune_core_natural.sh [OUT_DIR]
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${1:-$REPO/runs/core_natural_ft}"
export SPIKEGEN_SHARED_DATA="${SPIKEGEN_SHARED_DATA:-$REPO/../shared/data}"
export OMP_NUM_THREADS=1
mkdir -p "$OUT"
# the init is copied once: the shipped file may be replaced by a later export of this very run
[ -f "$OUT/init.safetensors" ] || { cp "$REPO/spikegen_core/assets/spikegen_natural.safetensors" "$OUT/init.safetensors";
                                     cp "$REPO/spikegen_core/assets/spikegen_natural.json" "$OUT/init.json"; }
echo "$(date -u +%FT%TZ) start/resume at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')" >> "$OUT/run.log"
nohup nice -n 19 "${PYTHON:-python}" -m spikegen_core.cli finetune natural --init "$OUT/init.safetensors" \
    --out-dir "$OUT" --steps 20000 --lr 2e-4 --seed 2 --threads 1 --ckpt-every 25 --resume --no-progress \
    >> "$OUT/run.log" 2>&1 &
echo $! > "$OUT/pid"
echo "fine-tuning in the background: pid $(cat "$OUT/pid"), log $OUT/run.log, checkpoints in $OUT"
