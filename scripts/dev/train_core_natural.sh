#!/usr/bin/env bash
# Long, resumable CPU training of the `natural` preset (autoencoder → pretraining → fine-tuning), in the
# background at nice 19 with 1 torch thread, so it only takes idle CPU. Rerunning the same command resumes every
# stage from its newest rotating checkpoint with the exact data stream of an uninterrupted run.
#
#   source .venv/bin/activate  # the environment with spikegen installed (or PYTHON=/path/to/python)
#   SPIKEGEN_SHARED_DATA=/path/to/shared/data bash scripts/dev/train_core_natural.sh [OUT_DIR]
#
# OUT_DIR (default runs/core_natural in the repository, git-ignored) gets vae_last.*, last.*, vae.safetensors, model.safetensors
# (pretraining), finetune/last.* (fine-tuning; evaluate with `spikegen eval ... --checkpoint OUT_DIR/finetune`),
# run.log, and pid. The shared data folder only adds the one REDS frame without spikes to the photographs.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${1:-$REPO/runs/core_natural}"
export SPIKEGEN_SHARED_DATA="${SPIKEGEN_SHARED_DATA:-$REPO/../shared/data}"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=1
mkdir -p "$OUT"
cd "$REPO"
echo "$(date -u +%FT%TZ) start/resume at $(git rev-parse --short HEAD 2>/dev/null || echo '?'), shared data: $SPIKEGEN_SHARED_DATA" >> "$OUT/run.log"
nohup nice -n 19 "${PYTHON:-python}" -m spikegen_core.train.ship --preset natural --work-dir "$OUT" \
    --vae-steps 3000 --pretrain-steps 200 --finetune-steps 30000 --threads 1 --ckpt-every 25 \
    --asset "$OUT/spikegen_natural.safetensors" >> "$OUT/run.log" 2>&1 &
echo $! > "$OUT/pid"
echo "training in the background: pid $(cat "$OUT/pid"), log $OUT/run.log, checkpoints in $OUT"
