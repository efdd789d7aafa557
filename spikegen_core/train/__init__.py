"""Training, restoration and evaluation of the SpikeGen model (the functions behind the ``spikegen`` CLI)."""

from spikegen_core.train.checkpoint import load_model, save_weights
from spikegen_core.train.config import (
    FINETUNE_PRESETS,
    PRETRAIN_PRESETS,
    FinetuneConfig,
    PretrainConfig,
    TrainConfig,
)
from spikegen_core.train.evaluate import evaluate, make_held_out_pairs
from spikegen_core.train.finetune import finetune
from spikegen_core.train.pretrain import pretrain
from spikegen_core.train.restore import restore, restore_image, restore_tensors

__all__ = [
    "FINETUNE_PRESETS",
    "PRETRAIN_PRESETS",
    "FinetuneConfig",
    "PretrainConfig",
    "TrainConfig",
    "evaluate",
    "finetune",
    "load_model",
    "make_held_out_pairs",
    "pretrain",
    "restore",
    "restore_image",
    "restore_tensors",
    "save_weights",
]
