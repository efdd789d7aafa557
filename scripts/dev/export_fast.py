"""Export the newest EMA of a WindowCNN training folder (``scripts/bench/bench_core_sidebyside.py train``) as the
shipped fast model (``--checkpoint fast``; card: spikegen_core/assets/spikegen_fast.md).

    python scripts/dev/export_fast.py --run runs/light
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from spikegen_core.train.checkpoint import SHIPPED_NAMES, load_fast_model, read_meta, save_weights  # noqa: E402
from spikegen_core.train.training_state import load_state  # noqa: E402


def train_options(run: Path, train: dict) -> str:
    """The ``bench_core_sidebyside.py train`` options that give ``train`` (a run's recorded config)."""
    opts = [f"--out {run}", f"--steps {train['steps']}"]
    if train.get("lr", 1e-3) != 1e-3:
        opts.append(f"--lr {train['lr']}")
    if train.get("init"):
        opts.append(f"--init {train['init']}")
    if tuple(train.get("motion_range", (0.0, 1.0))) != (0.0, 1.0):
        opts.append(f"--motion-max {train['motion_range'][1]}")
    if train.get("seed", 0):
        opts.append(f"--seed {train['seed']}")
    if train.get("collage_fraction"):
        opts.append(f"--collage {train['collage_fraction']}")
    return " ".join(opts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, required=True, help="training folder of bench_core_sidebyside.py train")
    p.add_argument("--out", type=Path, default=SHIPPED_NAMES["fast"])
    args = p.parse_args()
    net, meta = load_fast_model(args.run)  # checks that the folder holds a WindowCNN
    state = load_state(args.run, "last")
    cpu_s = read_meta(state.path).get("cpu_s")
    made_by = (f"python scripts/bench/bench_core_sidebyside.py train {train_options(args.run, meta['train'])}; EMA of step "
               f"{state.step}; python scripts/dev/export_fast.py --run {args.run}")  # fmt: skip
    save_weights(args.out, net.state_dict(), {"model": meta["model"], "train": meta["train"], "stage": "light",
                                              "step": state.step, "cpu_s": cpu_s, "made_by": made_by})  # fmt: skip
    print(f"wrote {args.out} (step {state.step}, {cpu_s / 3600 if cpu_s else 0:.2f} CPU-h)")


if __name__ == "__main__":
    main()
