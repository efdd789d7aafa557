#!/usr/bin/env bash
# Set up the environment and run the test suite (the README's test command; CI runs exactly this).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "$@"
. "${SPIKEGEN_VENV:-.venv}/bin/activate"
set +e
# numba/OpenMP workers sleep instead of spinning when idle: on 2 shared cores spinning cost 5x.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
python -m pytest -q -p no:cacheprovider --durations=15
rc=$?
set -e
if [[ $rc == 5 ]]; then echo "pytest collected no tests: that is a failure"; exit 1; fi
exit $rc
