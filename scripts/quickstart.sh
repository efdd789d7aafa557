#!/usr/bin/env bash
# The README's main job: set up .venv, then simulate a spike stream from the bundled image with a fast random
# motion and reconstruct it (TFP and TFI), printing where everything was written.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. "${SPIKEGEN_VENV:-.venv}/bin/activate"
out=${1:-outputs/quickstart}
spikegen simulate --out "$out/sample.dat" --frames 400 --motion 1.0
spikegen reconstruct "$out/sample.dat" --out "$out" --method both
