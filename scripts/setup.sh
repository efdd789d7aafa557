#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv with the exact pins of constraints.txt.
# Idempotent: a second run with unchanged pins only checks. Usage: bash scripts/setup.sh [--with-browser]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${SPIKEGEN_VENV:-.venv}
PY=${PYTHON:-python3}

# System library for open3d (pulled in by nerfstudio; ns-process-data and exporters import it).
need_apt=()
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then need_apt+=(libusb-1.0-0); fi
if [[ "${1:-}" == "--with-browser" ]] && ! command -v chromium >/dev/null 2>&1; then need_apt+=(chromium); fi
if ((${#need_apt[@]})); then
  if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
    echo "[setup] apt-get install ${need_apt[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null) \
      || echo "[setup] WARNING: apt-get could not install ${need_apt[*]}; open3d-based exporters may fail."
  else
    echo "[setup] NOTE: please install the system package(s) ${need_apt[*]} (e.g. 'sudo apt-get install ${need_apt[*]}');"
    echo "        without libusb-1.0 open3d cannot load (ns-export / ns-process-data)."
  fi
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "[setup] creating $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
stamp="$VENV/.spikegen-setup"
want=$(cat constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && python -c "import spikegen_core, nerfstudio" 2>/dev/null; then
  echo "[setup] $VENV is up to date"
  exit 0
fi
python -m pip install -q --upgrade "pip>=23" >/dev/null
# torch first and on its own: pip takes the local wheels on these machines (see PLATFORM notes in README).
echo "[setup] installing torch + torchvision (pinned in constraints.txt)"
python -m pip install -q -c constraints.txt torch torchvision
echo "[setup] installing spikegen and its dependencies (nerfstudio, gsplat, pycolmap, diffusers, ...)"
python -m pip install -q -c constraints.txt -e ".[test]"
echo "$want" > "$stamp"
echo "[setup] done: $(python -c 'import torch, nerfstudio; print("torch", torch.__version__)')"
