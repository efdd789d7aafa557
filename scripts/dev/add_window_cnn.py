"""Give a trained `natural` SpikeGen the WindowCNN intensity estimate (spikegen_core.models.temporal) without
changing what it computes: the WindowCNN's weights come from its own training (scripts/bench/bench_core_sidebyside.py
train), and every layer that reads the temporal features (the refiner's input and blend output, the temporal
tokens) gets zero weights for the new channel. Fine-tune the result with `spikegen finetune natural --init OUT`.

    python scripts/dev/add_window_cnn.py --base runs/core_natural/finetune --window-cnn runs/light --out init.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from spikegen_core.models.spikegen import SpikeGen  # noqa: E402
from spikegen_core.train.checkpoint import load_model, read_meta, save_weights  # noqa: E402
from spikegen_core.train.training_state import load_state  # noqa: E402


def widen(old: torch.Tensor, new_shape: torch.Size, dim: int, at: int) -> torch.Tensor:
    """``old`` with a zero slice inserted at index ``at`` of ``dim`` (the new feature's weights)."""
    if old.shape == new_shape:
        return old
    zero = torch.zeros_like(old.narrow(dim, 0, 1))
    out = torch.cat([old.narrow(dim, 0, at), zero, old.narrow(dim, at, old.shape[dim] - at)], dim)
    assert out.shape == new_shape, (out.shape, new_shape)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", type=Path, required=True, help="natural SpikeGen checkpoint or training folder")
    p.add_argument(
        "--window-cnn", type=Path, required=True, help="training folder of bench_core_sidebyside.py train"
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--anchor", action="store_true",
                   help="anchor the refiner at the WindowCNN estimate (ModelConfig.refiner_anchor) and zero its last "
                   "layer: the model starts as the WindowCNN's luma with the decoded colour")  # fmt: skip
    args = p.parse_args()
    base, meta = load_model(args.base)
    if base.temporal is None or base.temporal.light is not None:
        sys.exit(f"{args.base}: needs a model with temporal features and no WindowCNN yet")
    cnn_state = load_state(args.window_cnn, "last")
    cnn = read_meta(cnn_state.path)["model"]["window_cnn"]
    cfg = base.config
    cfg.refiner_anchor = args.anchor
    cfg.temporal_light_width, cfg.temporal_light_blocks, cfg.temporal_light_frames = (
        cnn["width"], cnn["blocks"], cnn["frames"])  # fmt: skip
    model = SpikeGen(cfg)
    e = base.temporal.estimates  # the new estimate's index among the features
    old = base.state_dict()
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("temporal.light."):
            state[key] = cnn_state.ema_weights[key.removeprefix("temporal.light.")]
        elif key == "refiner.inp.0.weight":  # inputs: decoded (3), RGB slot (3), then the features
            state[key] = widen(old[key], value.shape, 1, 6 + e)
        elif key == "temporal_tokens.0.weight":
            state[key] = widen(old[key], value.shape, 1, e)
        elif key in ("refiner.out.weight", "refiner.out.bias"):
            # outputs: residual (3), blend to RGB (1), then one blend per estimate
            state[key] = widen(old[key], value.shape, 0, 4 + e)
        else:
            state[key] = old[key]
        if args.anchor and key.startswith("refiner.out."):
            state[key] = torch.zeros_like(value)
    model.load_state_dict(state, strict=True)
    # CPU seconds of the stages behind this model, so benchmarks can state its whole fine-tuning budget
    made = {"base": str(args.base), "base_step": meta.get("step"), "base_cpu_s": meta.get("cpu_s"),
            "window_cnn": str(args.window_cnn), "window_cnn_step": cnn_state.step,
            "window_cnn_cpu_s": read_meta(cnn_state.path).get("cpu_s"), "anchor": args.anchor}  # fmt: skip
    save_weights(
        args.out, model.state_dict(), {"model": cfg.to_dict(), "stage": "add-window-cnn", "made_from": made}
    )
    print(f"wrote {args.out} ({made})")


if __name__ == "__main__":
    main()
