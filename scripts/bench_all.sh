#!/usr/bin/env bash
# Rerun every benchmark in order, then the figures, BENCHMARKS.md and the README's Results section.
#
#   bash scripts/bench_all.sh                # everything (the NVS benchmark alone takes about an hour on 2 CPU cores)
#   bash scripts/bench_all.sh --quick        # skip the slow ones (NVS training, COLMAP runs); keep their old results
#   bash scripts/bench_all.sh --only core real   # just these (names as in benchmarks/<name>.json)
#   bash scripts/bench_all.sh --list         # what would run
#
# Each benchmark writes benchmarks/<name>.{md,json} with the commit, the machine and its settings. A failing
# benchmark does not stop the others; the exit status says whether any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${VIRTUAL_ENV:-}" && -f "${SPIKEGEN_VENV:-.venv}/bin/activate" ]]; then
    . "${SPIKEGEN_VENV:-.venv}/bin/activate"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}  # idle OpenMP workers sleep: on shared cores spinning costs

# name | script | slow (skipped by --quick) or manual (needs inputs or CUDA: runs only when named by --only)
BENCHMARKS=(
    "spike_io|scripts/bench/bench_spike_io.py|"
    "simulator|scripts/bench/bench_simulator.py|"
    "core|scripts/bench/bench_core.py|"
    "real|scripts/bench/bench_real.py|"
    "video|scripts/bench/bench_video.py|"
    "rasterizer|scripts/bench/bench_rasterizer.py|"
    "process_data|scripts/bench/bench_process_data_fox.py|slow"
    "process_data_stream|scripts/bench/bench_process_data_stream.py|slow"
    "nvs|scripts/bench/bench_nvs.py|slow"
    "cfa|scripts/bench/bench_cfa.py|slow"
    "cfa_restore|scripts/bench/bench_cfa_restore.py|"
    "radiometry|scripts/bench/bench_radiometry.py|slow"
    "iteration_cost|scripts/bench/bench_iteration_cost.py|manual"
    "prior|scripts/bench/bench_prior.py|slow"
    "prior_2d|scripts/bench/bench_prior_2d.py|manual"
    "core_natural|scripts/bench/bench_core_natural.py|manual"
    "rasterizer_vs_gsplat|scripts/bench/compare_gsplat.py|manual"
)

quick=0 list=0 only=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=1 ;;
        --list) list=1 ;;
        --only) shift; while [[ $# -gt 0 && "$1" != --* ]]; do only+=("$1"); shift; done; continue ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "bench_all.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

wanted() {  # name slow
    if [[ ${#only[@]} -gt 0 ]]; then
        local n; for n in "${only[@]}"; do [[ "$n" == "$1" ]] && return 0; done; return 1
    fi
    [[ "$2" == manual ]] && return 1
    [[ $quick == 1 && "$2" == slow ]] && return 1
    return 0
}

failed=()
for entry in "${BENCHMARKS[@]}"; do
    IFS='|' read -r name script slow <<<"$entry"
    if ! wanted "$name" "$slow"; then
        echo "== skip $name${slow:+ ($slow)}"
        continue
    fi
    if [[ $list == 1 ]]; then echo "== would run: python $script"; continue; fi
    if [[ ! -f "$script" ]]; then echo "== $name: $script missing" >&2; failed+=("$name"); continue; fi
    echo "== $name: python $script"
    start=$SECONDS
    if python "$script"; then
        echo "== $name done in $((SECONDS - start)) s"
    else
        echo "== $name FAILED after $((SECONDS - start)) s" >&2
        failed+=("$name")
    fi
done
[[ $list == 1 ]] && exit 0

echo "== figures: python scripts/figures/figures.py"
python scripts/figures/figures.py || failed+=("figures")
echo "== results: python scripts/bench/make_results.py"
python scripts/bench/make_results.py || failed+=("make_results")

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "bench_all.sh: failed: ${failed[*]}" >&2
    exit 1
fi
echo "bench_all.sh: all done; see BENCHMARKS.md and the README's Results section"
