"""Scene-like random Gaussian clouds for rasteriser benchmarks and parity checks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class SplatScene:
    """Inputs of ``rasterization`` (Gaussians + cameras) for one benchmark setting."""

    means: Tensor
    quats: Tensor
    scales: Tensor
    opacities: Tensor
    colors: Tensor  # [N, 3] or SH [N, K, 3]
    viewmats: Tensor
    Ks: Tensor
    width: int
    height: int

    def params(self) -> list[Tensor]:
        return [self.means, self.quats, self.scales, self.opacities, self.colors]

    def to(self, device: str | torch.device) -> SplatScene:
        moved = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in self.__dict__.items()}
        return SplatScene(**moved)


def random_splat_scene(
    n: int,
    n_cams: int = 1,
    width: int = 240,
    height: int = 180,
    *,
    sh_degree: int | None = None,
    seed: int = 0,
) -> SplatScene:
    """A cloud filling the view frustum at depth 2–6 with log-uniform scales 4–40 mm.

    With a 200 px focal length (for 240 px width) most splats cover a few to a few tens of pixels, as in
    a trained scene.  The ``n_cams`` cameras slide 10 cm sideways, like virtual views across an exposure.
    """
    g = torch.Generator().manual_seed(seed)
    focal = 200.0 * width / 240.0
    z = 2.0 + 4.0 * torch.rand(n, generator=g)
    half = torch.tensor([0.6 * width / focal, 0.6 * height / focal])
    xy = (torch.rand(n, 2, generator=g) * 2 - 1) * half * z[:, None]
    means = torch.cat([xy, z[:, None]], 1)
    log_s = torch.empty(n, 3).uniform_(math.log(0.004), math.log(0.04), generator=g)
    quats = torch.randn(n, 4, generator=g)
    opacities = torch.rand(n, generator=g) * 0.9 + 0.05
    if sh_degree is None:
        colors = torch.rand(n, 3, generator=g)
    else:
        colors = torch.randn(n, (sh_degree + 1) ** 2, 3, generator=g) * 0.2
    viewmats = torch.eye(4).repeat(n_cams, 1, 1)
    viewmats[:, 0, 3] = torch.linspace(-0.05, 0.05, n_cams)
    Ks = torch.tensor([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]]).repeat(
        n_cams, 1, 1
    )
    return SplatScene(means, quats, torch.exp(log_s), opacities, colors, viewmats, Ks, width, height)
