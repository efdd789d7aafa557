#!/usr/bin/env bash
# The README's main job (needs the .venv that scripts/setup.sh makes): generate the sample high-speed spike scene,
# train spikegen-splat on it (CPU is fine), score the test views (ns-eval) and render them (ns-render), then say
# where everything is. A few minutes of CPU (1000 iterations); its scores and time are in the README's quick start
# and benchmarks/nvs.md (scene kind "orbit", seed 0, is this sample).
#   usage: bash scripts/quickstart_nvs.sh [OUTPUT_DIR (default: outputs)]
set -euo pipefail
cd "$(dirname "$0")/.."
. "${SPIKEGEN_VENV:-.venv}/bin/activate"
out=${1:-outputs}
scene="$out/spikegen-sample"
run="$out/sample/spikegen-splat/quickstart"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # tiny images: one thread wastes least (3x less CPU than 2 when busy)
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
start=$SECONDS

# 1. The sample scene: 24 training views (64-tick spike windows + motion-blurred RGB), 6 sharp test views.
if [ ! -f "$scene/transforms.json" ]; then
    # shellcheck disable=SC2086  # extra flags (tests use a smaller scene)
    spikegen make-scene --out "$scene" ${SPIKEGEN_SCENE_ARGS:-}
fi

# 2. Train. --vis tensorboard: no viewer during training (run ns-viewer afterwards, see below). spikegen-splat's
# defaults are for real captures (30000 iterations, splatfacto's schedule, SH degree 3); the sample scene is tiny,
# so ask for the short CPU schedule: 1000 iterations, densifying early and often, SH degree 1, full resolution.
# shellcheck disable=SC2086
ns-train spikegen-splat --data "$scene" --vis tensorboard --output-dir "$out" \
    --experiment-name sample --timestamp quickstart \
    --max-num-iterations 1000 --pipeline.model.schedule quick --pipeline.model.sh-degree 1 \
    --pipeline.model.num-downscales 0 ${SPIKEGEN_TRAIN_ARGS:-}

# 3. Test-view PSNR/SSIM against the sharp ground truth, as JSON.
ns-eval --load-config "$run/config.yml" --output-path "$run/eval.json"
python - "$run/eval.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
print(f"test views: PSNR {r['psnr']:.2f} dB, SSIM {r['ssim']:.3f}")
EOF

# 4. Render the test views (RGB images).
ns-render dataset --load-config "$run/config.yml" --split test --rendered-output-names rgb gt-rgb --image-format png \
    --output-path "$run/renders"

cat <<EOF

done in $((SECONDS - start)) s
  scene:        $scene
  trained run:  $run   (checkpoint in nerfstudio_models/, tensorboard logs in the folder)
  metrics:      $run/eval.json
  renders:      $run/renders/test/rgb/ (ground truth beside them in gt-rgb/)
  viewer:       ns-viewer --load-config $run/config.yml   (then open the printed http://localhost:7007 address)
  video:        ns-render interpolate --load-config $run/config.yml --output-path $run/orbit.mp4
EOF
