#!/usr/bin/env bash
# The README's main job on a fresh machine: set up .venv (scripts/setup.sh), then generate the built-in sample
# high-speed spike scene, train spikegen-splat on it on the CPU, print the test-view PSNR/SSIM and render the
# test views (scripts/quickstart_nvs.sh says where everything is).   usage: bash scripts/quickstart.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/quickstart_nvs.sh "$@"
