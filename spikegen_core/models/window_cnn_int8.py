"""The fast model (:class:`WindowCNN`) in int8 for CPU video: torch's post-training static quantization (FX graph
mode, x86/fbgemm kernels), calibrated on the first windows it restores.

Why: the fast model is compute-bound on a CPU (about 18 G multiply-adds per 250×400 frame) and int8 convolutions
run faster there than float32 ones (speed and quality: ``benchmarks/video.md``). Why calibrate on the run's own
windows: the input is ticks × θ and every activation scales with θ, so ranges fixed for one camera would clip
another's; one calibration per θ, on the content being restored, keeps the ranges right.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from spikegen_core.models.temporal import WindowCNN

CALIBRATION_CROP = (160, 256)
"""Height and width of the central region of each calibration window whose activations set the int8 ranges."""


class _Trunk(nn.Module):
    """The WindowCNN's trunk as a module of its own (what FX traces and quantizes)."""

    def __init__(self, net: WindowCNN) -> None:
        super().__init__()
        self.stem, self.blocks, self.head = net.stem, net.blocks, net.head

    forward = WindowCNN.trunk


class Int8WindowCNN(nn.Module):
    """A :class:`WindowCNN` whose trunk runs in int8, for one camera θ: same call, same output range."""

    def __init__(self, net: WindowCNN, trunk: nn.Module, threshold: float) -> None:
        super().__init__()
        self.frames, self.threshold, self.trunk = net.frames, float(threshold), trunk
        self._inputs = net.inputs
        self.device = torch.device("cpu")

    def forward(self, spikes: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
        if not torch.allclose(threshold.float(), torch.tensor(self.threshold)):
            raise ValueError(f"this int8 model is calibrated for θ = {self.threshold}, got {threshold.tolist()}")
        x = self._inputs(spikes.cpu(), threshold.cpu())
        return x.mean(1, keepdim=True) + self.trunk(x)


@torch.no_grad()
def quantize_fast_model(net: WindowCNN, calibration: torch.Tensor, threshold: float) -> Int8WindowCNN:
    """``net`` in int8 for θ = ``threshold``, its activation ranges observed on ``calibration``: spike windows
    ``(B, T, H, W)`` (a few frames of the stream to restore are enough; each is observed in its central
    ``CALIBRATION_CROP`` pixels: about 1.5 s for two windows once torch's quantization modules are loaded). CPU
    only."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    net = copy.deepcopy(net).cpu().eval()
    theta = torch.full((1,), float(threshold))
    h, w = (min(n, c) for n, c in zip(calibration.shape[-2:], CALIBRATION_CROP, strict=True))
    top, left = (calibration.shape[-2] - h) // 2, (calibration.shape[-1] - w) // 2
    crop = calibration[..., top : top + h, left : left + w].cpu()
    xs = [net.inputs(crop[i : i + 1], theta) for i in range(len(crop))]
    torch.backends.quantized.engine = "x86"
    # torch flags torch.ao for removal; its replacement (torchao pt2e) runs int8 kernels only through torch.compile,
    # which needs a C compiler at run time. The restorer falls back to float32 once torch drops these kernels.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qconfig = get_default_qconfig_mapping("x86").set_module_name("head", None)
        prepared = prepare_fx(_Trunk(net).eval(), qconfig, (xs[0],))
        for x in xs:
            prepared(x)
        trunk = convert_fx(prepared)
    return Int8WindowCNN(net, trunk, threshold).eval()
