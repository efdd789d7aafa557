"""Virtual views by warping: exact for a fronto-parallel plane, and close to the rendered view for a Gaussian scene."""

from __future__ import annotations

import torch

from spikegen_nvs.rasterizer import rasterization
from spikegen_nvs.window_warp import warp_views


def _viewmat(tx: float = 0.0, ty: float = 0.0) -> torch.Tensor:
    """World-to-camera of a camera at (tx, ty, 0) looking down +z (OpenCV axes)."""
    m = torch.eye(4)
    m[0, 3], m[1, 3] = -tx, -ty
    return m


def test_a_plane_seen_from_a_camera_moved_sideways_is_the_image_shifted_by_its_parallax() -> None:
    g = torch.Generator().manual_seed(0)
    image = torch.rand(12, 20, 3, generator=g, requires_grad=True)
    depth = torch.full((12, 20), 5.0)
    K = torch.tensor([[10.0, 0, 10], [0, 10.0, 6], [0, 0, 1]])
    views, valid = warp_views(image, depth, K, _viewmat(), torch.stack([_viewmat(tx=1.0), _viewmat(ty=-1.0)]))
    # f * t / z = 2 px: moving right by 1 sees pixel u at u + 2 of the centre image; moving up by 1, v at v - 2.
    assert torch.allclose(views[0][:, :-2], image[:, 2:], atol=1e-5)
    assert torch.allclose(views[1][2:], image[:-2], atol=1e-5)
    assert not torch.allclose(views[0][:, :-2], image[:, :-2], atol=1e-2)
    # valid: what the centre view sees (the last 2 columns / first 2 rows come from outside it)
    assert valid[0][:, :-2].all() and not valid[0][:, -2:].any()
    assert valid[1][2:].all() and not valid[1][:2].any()
    views.sum().backward()  # differentiable in the image (colours move through the warp)
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_a_warped_render_matches_the_render_at_the_nearby_pose() -> None:
    g = torch.Generator().manual_seed(1)
    n = 1500
    xy = (torch.rand(n, 2, generator=g) * 2 - 1) * torch.tensor([4.5, 3.5])
    means = torch.cat([xy, 4 + torch.rand(n, 1, generator=g)], dim=1)
    quats = torch.tensor([[1.0, 0, 0, 0]]).expand(n, 4)
    scales = torch.full((n, 3), 0.15)
    opacities = torch.full((n,), 0.9)
    colors = torch.rand(n, 3, generator=g)
    K = torch.tensor([[30.0, 0, 24], [0, 30.0, 18], [0, 0, 1]])
    cams = torch.stack([_viewmat(), _viewmat(tx=0.15)])
    render, alpha, _ = rasterization(means, quats, scales, opacities, colors, cams, K.expand(2, 3, 3), 48, 36,
                                     render_mode="RGB+ED", packed=False)  # fmt: skip
    centre, moved = render[0, ..., :3], render[1, ..., :3]
    warped = warp_views(centre, render[0, ..., 3], K, cams[0], cams[1:])[0][0]
    inner = (slice(4, -4), slice(4, -4))  # away from the borders the centre view does not see past
    err_warp = (warped[inner] - moved[inner]).abs().mean()
    err_none = (centre[inner] - moved[inner]).abs().mean()  # the centre view used as it is
    assert err_warp < 0.15 * err_none, (err_warp, err_none)
    assert alpha.min() > 0.3  # the scene fills the view (little background in the comparison)


def test_beside_a_depth_edge_the_refined_depth_takes_the_right_surface() -> None:
    """A near square over a far wall: placing each target pixel again at the depth the centre sees where it lands
    gets closer to the render at the moved pose than the first guess (the same pixel's depth)."""
    g = torch.Generator().manual_seed(1)
    n, m = 1500, 400
    far = torch.cat([(torch.rand(n, 2, generator=g) * 2 - 1) * torch.tensor([4.5, 3.5]), 5 + 0.2 * torch.rand(n, 1, generator=g)], 1)
    near = torch.cat([(torch.rand(m, 2, generator=g) * 2 - 1) * 0.8, 2 + 0.05 * torch.rand(m, 1, generator=g)], 1)
    means = torch.cat([far, near])
    quats = torch.tensor([[1.0, 0, 0, 0]]).expand(n + m, 4)
    scales = torch.cat([torch.full((n, 3), 0.15), torch.full((m, 3), 0.06)])
    colors = torch.rand(n + m, 3, generator=g)
    K = torch.tensor([[30.0, 0, 24], [0, 30.0, 18], [0, 0, 1]])
    cams = torch.stack([_viewmat(), _viewmat(tx=0.25)])
    render, _, _ = rasterization(means, quats, scales, torch.full((n + m,), 0.9), colors, cams, K.expand(2, 3, 3),
                                 48, 36, render_mode="RGB+ED", packed=False)  # fmt: skip
    inner = (slice(4, -4), slice(4, -4))
    warped, valid = warp_views(render[0, ..., :3], render[0, ..., 3], K, cams[0], cams[1:])
    err = (warped[0] - render[1, ..., :3]).abs().mean(dim=-1)[inner]
    seen = valid[0][inner]
    # Pixels hidden from the centre view (beside the near square, at the border) are marked, and they hold most
    # of what the warp gets wrong.
    assert 0.01 < 1 - seen.float().mean() < 0.3
    assert err[seen].mean() < 0.6 * err[~seen].mean(), (err[seen].mean(), err[~seen].mean())
    errors = [
        float((warp_views(render[0, ..., :3], render[0, ..., 3], K, cams[0], cams[1:], refine=r)[0][0] - render[1, ..., :3])[inner].abs().mean())
        for r in (0, 2)
    ]  # fmt: skip
    still = float((render[0, ..., :3] - render[1, ..., :3])[inner].abs().mean())
    assert errors[1] < 0.85 * errors[0] < 0.3 * still, (errors, still)
