"""EMA of the model weights (torch's AveragedModel with its EMA update rule)."""

from __future__ import annotations

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def make_ema(model: nn.Module, decay: float) -> AveragedModel:
    """An EMA copy of ``model`` (buffers included) updated by ``ema.update_parameters(model)``."""
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
