"""Where the splat prior's checkpoint lives: the shipped tiny SpikeGen fine-tuned on splat renders.

``spikegen_nvs/assets/spikegen_tiny_splatfix.safetensors`` is ``spikegen_core``'s shipped checkpoint after
``spikegen finetune-pairs`` on (render of a partly trained splat scene, ground truth) pairs from generated scenes
(``scripts/dev/make_prior_pairs.py``; recipe and numbers in ``spikegen_tiny_splatfix.md`` beside it). It lives in
this package because only the splat method uses it."""

from __future__ import annotations

from pathlib import Path

import tyro

SPLAT_PRIOR = Path(__file__).resolve().parents[1] / "assets" / "spikegen_tiny_splatfix.safetensors"


def export_splat_prior(checkpoint: tyro.conf.Positional[Path], dst: Path = SPLAT_PRIOR) -> Path:
    """Install a ``spikegen finetune-pairs`` result as the splat prior (float16 weights + JSON, atomically).

    ``python -m spikegen_nvs.prior.checkpoint runs/prior-pairs-tiny/model.safetensors``"""
    from spikegen_core.train.ship import export

    return export(Path(checkpoint), Path(dst), {"exported_as": "splat prior"})


if __name__ == "__main__":
    print(f"wrote {tyro.cli(export_splat_prior)}")
