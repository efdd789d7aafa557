"""CPU rasteriser vs a dense float64 reference (images, alphas, depths, gradients) and gsplat's rules.

Tolerances: images/alphas/expected depth within 2e-4 (float32 vs float64); gradients within 2e-3 of
the largest gradient magnitude of each parameter (float32 accumulation over many pixels).
"""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch

from spikegen_core.errors import InputMismatchError
from spikegen_nvs.rasterizer._reference import reference_rasterization
from spikegen_nvs.rasterizer.cpu import rasterization

COMPOSITORS = ["torch"] + (["numba"] if importlib.util.find_spec("numba") else [])
PARAMS = ("means", "quats", "scales", "opacities", "colors")


def make_scene(seed: int, n: int, n_cams: int, width: int, height: int, sh_degree: int | None):
    """Random cloud in front of the cameras, plus Gaussians behind them, huge, tiny and off-screen ones."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g) * torch.tensor([1.2, 1.0, 0.8]) + torch.tensor([0.0, 0.0, 4.0])
    k = max(n // 10, 1)
    means[:k, 2] = -torch.rand(k, generator=g)  # behind the camera
    means[k : 2 * k, 0] += 3.5  # mostly off to the side (partly on screen)
    scales = torch.rand(n, 3, generator=g) * 0.15 + 0.01
    scales[2 * k : 2 * k + 3] *= 15  # huge
    scales[2 * k + 3 : 2 * k + 6] *= 0.01  # tiny (sub-pixel)
    quats = torch.randn(n, 4, generator=g)
    opacities = torch.rand(n, generator=g) * 0.98 + 0.01
    if sh_degree is None:
        colors = torch.rand(n, 3, generator=g)
    else:
        colors = torch.randn(n, (sh_degree + 1) ** 2, 3, generator=g) * 0.3
    viewmats = torch.eye(4).repeat(n_cams, 1, 1)
    for c in range(n_cams):  # small camera motion across an exposure, with a little rotation
        a = 0.05 * c
        viewmats[c, :3, :3] = torch.tensor(
            [[1.0, 0.0, 0.0], [0.0, torch.cos(torch.tensor(a)), -torch.sin(torch.tensor(a))],
             [0.0, torch.sin(torch.tensor(a)), torch.cos(torch.tensor(a))]]
        )  # fmt: skip
        viewmats[c, 0, 3] = 0.1 * c
    f = 0.9 * width
    Ks = torch.tensor([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]]).repeat(n_cams, 1, 1)
    return [means, quats, scales, opacities, colors], viewmats, Ks


def render_and_grad(fn, params, viewmats, Ks, width, height, weights, **kw):
    """Forward, a fixed random linear loss on colours and alphas, backward; returns outputs + grads."""
    leaves = [p.clone().requires_grad_(True) for p in params]
    colors, alphas, meta = fn(*leaves, viewmats, Ks, width, height, **kw)
    loss = (colors * weights[..., : colors.shape[-1]]).sum() + (alphas[..., 0] * weights[..., -1]).sum()
    loss.backward()
    return colors.detach(), alphas.detach(), [p.grad for p in leaves], meta


CASES = [
    # n, cams, W, H, render_mode, sh_degree, rasterize_mode, backgrounds
    (60, 1, 24, 20, "RGB", None, "classic", False),
    (150, 1, 40, 33, "RGB+ED", 0, "antialiased", False),
    (150, 3, 33, 40, "RGB+ED", 1, "classic", True),
    (120, 2, 48, 32, "RGB", 3, "antialiased", False),
    (120, 2, 32, 32, "ED", 2, "classic", False),
]


@pytest.mark.parametrize("compositor", COMPOSITORS)
@pytest.mark.parametrize("case", CASES, ids=[f"{c[4]}-sh{c[5]}-{c[6]}-C{c[1]}" for c in CASES])
def test_matches_dense_reference(case, compositor) -> None:
    n, n_cams, width, height, mode, sh_degree, aa, with_bg = case
    params, viewmats, Ks = make_scene(CASES.index(case), n, n_cams, width, height, sh_degree)
    kw = {"render_mode": mode, "sh_degree": sh_degree, "rasterize_mode": aa, "tile_size": 16}
    if with_bg:
        kw["backgrounds"] = torch.rand(n_cams, 3)
    n_out = {"RGB": 3, "ED": 1, "RGB+ED": 4}[mode]
    weights = torch.randn(n_cams, height, width, n_out + 1)
    if mode != "RGB":  # keep depth gradients on the same scale as colour ones
        weights[..., n_out - 1] *= 0.05

    ours = render_and_grad(
        rasterization, params, viewmats, Ks, width, height, weights, compositor=compositor, **kw
    )
    ref = render_and_grad(reference_rasterization, params, viewmats, Ks, width, height, weights, **kw)

    assert ours[0].shape == (n_cams, height, width, n_out) and ours[1].shape == (n_cams, height, width, 1)
    radii = ours[3]["radii"]
    assert torch.equal(radii, ref[3]["radii"])
    assert 0 < (radii > 0).sum() < radii.numel()  # the scene exercises both culled and visible splats
    assert ours[1].max() > 0.5  # and is not empty
    torch.testing.assert_close(ours[1], ref[1].float(), atol=2e-4, rtol=0)
    if "D" in mode:
        # Expected depth is ill-conditioned where alpha ~ 0; compare where the pixel is covered.
        covered = (ref[1][..., 0] > 0.05)[..., None]
        torch.testing.assert_close(ours[0] * covered, (ref[0] * covered).float(), atol=2e-3, rtol=1e-4)
    else:
        torch.testing.assert_close(ours[0], ref[0].float(), atol=2e-4, rtol=0)
    for name, g_ours, g_ref in zip(PARAMS, ours[2], ref[2], strict=True):
        if mode in ("D", "ED") and name == "colors":  # depth-only renders do not read colours
            assert g_ours is None and g_ref is None
            continue
        scale = g_ref.abs().max().item()
        assert scale > 0, name
        torch.testing.assert_close(
            g_ours, g_ref.float(), atol=2e-3 * scale, rtol=0, msg=lambda m, nm=name: f"{nm}: {m}"
        )


@pytest.mark.parametrize("compositor", COMPOSITORS)
def test_early_stop_rule_on_opaque_stack(compositor) -> None:
    """Ten 0.99-opaque splats on one pixel centre: the second would take T to 1e-4, so only the first counts."""
    n = 10
    means = torch.tensor([[0.0, 0.0, 2.0 + 0.1 * i] for i in range(n)])
    quats = torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1)
    scales = torch.full((n, 3), 0.05)
    opacities = torch.full((n,), 0.99)
    colors = torch.rand(n, 3)
    Ks = torch.tensor(
        [[[20.0, 0.0, 8.5], [0.0, 20.0, 8.5], [0.0, 0.0, 1.0]]]
    )  # mean hits pixel (8, 8)'s centre
    out, alpha, _ = rasterization(means, quats, scales, opacities, colors, torch.eye(4)[None], Ks, 17, 17,
                                  compositor=compositor)  # fmt: skip
    torch.testing.assert_close(alpha[0, 8, 8, 0], torch.tensor(0.99), atol=1e-6, rtol=0)
    torch.testing.assert_close(out[0, 8, 8], 0.99 * colors[0], atol=1e-6, rtol=0)


def test_meta_and_densification_inputs() -> None:
    """What splatfacto's DefaultStrategy reads: means2d.grad (+ absgrad), radii, width/height/n_cameras."""
    params, viewmats, Ks = make_scene(3, 80, 2, 32, 24, None)
    leaves = [p.clone().requires_grad_(True) for p in params]
    colors, alphas, meta = rasterization(*leaves, viewmats, Ks, 32, 24, packed=False, absgrad=True)
    meta["means2d"].retain_grad()  # what DefaultStrategy.step_pre_backward does
    (colors.sum() + alphas.sum()).backward()
    m2d = meta["means2d"]
    assert m2d.shape == (2, 80, 2) and meta["radii"].shape == (2, 80) and meta["radii"].dtype == torch.int32
    assert (
        meta["gaussian_ids"] is None
        and meta["n_cameras"] == 2
        and (meta["width"], meta["height"]) == (32, 24)
    )
    visible = meta["radii"] > 0
    assert m2d.grad[~visible].abs().max() == 0 and m2d.grad[visible].abs().max() > 0
    # absgrad sums |per-pixel gradient|, so it bounds |grad| from above and is strictly larger somewhere.
    assert torch.all(m2d.absgrad >= m2d.grad.abs() - 1e-5)
    assert (m2d.absgrad - m2d.grad.abs()).max() > 1e-3


@pytest.mark.skipif(len(COMPOSITORS) < 2, reason="numba not installed")
def test_absgrad_agrees_between_compositors() -> None:
    params, viewmats, Ks = make_scene(5, 100, 2, 40, 30, 1)
    grads = []
    for comp in COMPOSITORS:
        leaves = [p.clone().requires_grad_(True) for p in params]
        colors, alphas, meta = rasterization(
            *leaves, viewmats, Ks, 40, 30, sh_degree=1, absgrad=True, compositor=comp
        )
        (colors.square().sum() - alphas.sum()).backward()
        grads.append((meta["means2d"].grad, meta["means2d"].absgrad))
    torch.testing.assert_close(grads[0][0], grads[1][0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(grads[0][1], grads[1][1], atol=1e-4, rtol=1e-4)


def test_projection_and_sh_match_gsplat_torch_impl() -> None:
    """Our projection and SH against gsplat's own pure-torch implementation (no CUDA involved)."""
    impl = pytest.importorskip("gsplat.cuda._torch_impl")
    from spikegen_nvs.rasterizer.project import project_gaussians, quat_scale_to_covar, sh_to_color

    params, viewmats, Ks = make_scene(7, 200, 2, 40, 30, 3)
    means, quats, scales = params[0], params[1], params[2]
    covars = quat_scale_to_covar(quats, scales)
    ours = project_gaussians(means, covars, viewmats, Ks, 40, 30, calc_compensations=True)
    radii, m2d, depths, conics, comp = impl._fully_fused_projection(
        means, covars, viewmats, Ks, 40, 30, calc_compensations=True
    )
    assert torch.equal(ours.radii, radii)
    vis = radii > 0
    torch.testing.assert_close(ours.means2d[vis], m2d[vis])
    torch.testing.assert_close(ours.conics[vis], conics[vis])
    torch.testing.assert_close(ours.compensations[vis], comp[vis])
    torch.testing.assert_close(ours.depths, depths)
    dirs = torch.nn.functional.normalize(torch.randn(50, 3), dim=-1)
    coeffs = torch.randn(50, 16, 3)
    for deg in range(4):
        torch.testing.assert_close(
            sh_to_color(deg, dirs, coeffs), impl._spherical_harmonics(deg, dirs, coeffs)
        )


def test_backend_switch_never_imports_gsplat_on_cpu(monkeypatch) -> None:
    from spikegen_nvs.rasterizer import rasterization as switch

    monkeypatch.setitem(sys.modules, "gsplat", None)  # any `import gsplat` now raises ImportError
    params, viewmats, Ks = make_scene(1, 30, 1, 16, 16, None)
    colors, alphas, meta = switch(*params, viewmats, Ks, 16, 16)
    direct = rasterization(*params, viewmats, Ks, 16, 16)
    assert torch.equal(colors, direct[0]) and torch.equal(alphas, direct[1])


def test_bad_inputs_raise_our_error() -> None:
    params, viewmats, Ks = make_scene(2, 10, 1, 16, 16, None)
    with pytest.raises(InputMismatchError, match="opacities must be"):
        rasterization(params[0], params[1], params[2], params[3][:, None], params[4], viewmats, Ks, 16, 16)
    with pytest.raises(InputMismatchError, match="sh_degree"):
        rasterization(*params[:4], torch.zeros(10, 4, 3), viewmats, Ks, 16, 16, sh_degree=3)


@pytest.mark.skipif("numba" not in COMPOSITORS, reason="numba not installed")
def test_numba_thread_split_is_deterministic() -> None:
    """Tiles split over 2 worker threads give the same images and gradients as one thread."""
    from spikegen_nvs.rasterizer._scenes import random_splat_scene

    scene = random_splat_scene(3000, 2, width=64, height=48, seed=4)
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        leaves = [p.clone().requires_grad_(True) for p in scene.params()]
        colors, alphas, meta = rasterization(*leaves, scene.viewmats, scene.Ks, 64, 48, compositor="numba")
        assert meta["flatten_ids"].numel() >= 2048  # large enough to take the multi-threaded path
        (colors.square().sum() + alphas.sum()).backward()
        results.append([colors, alphas] + [p.grad for p in leaves])
    torch.set_num_threads(1)
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("compositor", COMPOSITORS)
def test_nothing_visible_gives_background(compositor) -> None:
    """All splats behind the camera: zero alpha, the background everywhere, zero (not NaN) gradients."""
    params, viewmats, Ks = make_scene(6, 20, 2, 16, 16, None)
    params[0] = params[0] * torch.tensor([1.0, 1.0, 0.0]) - torch.tensor([0.0, 0.0, 1.0])
    leaves = [p.clone().requires_grad_(True) for p in params]
    bg = torch.rand(2, 3)
    colors, alphas, meta = rasterization(*leaves, viewmats, Ks, 16, 16, backgrounds=bg, compositor=compositor)
    (colors.sum() + alphas.sum()).backward()
    assert (meta["radii"] == 0).all() and alphas.abs().max() == 0
    torch.testing.assert_close(colors, bg[:, None, None, :].expand(2, 16, 16, 3))
    for p in leaves[:4]:
        assert torch.isfinite(p.grad).all() and p.grad.abs().max() == 0


@pytest.mark.skipif("numba" not in COMPOSITORS, reason="numba not installed")
def test_numba_projection_matches_autograd_projection() -> None:
    """Hand-written projection backward vs autograd of the torch projection, all outputs, clamped splats too."""
    from spikegen_nvs.rasterizer.numba_project import project_gaussians_numba
    from spikegen_nvs.rasterizer.project import project_gaussians, quat_scale_to_covar

    params, viewmats, Ks = make_scene(8, 200, 3, 40, 30, None)
    covars = quat_scale_to_covar(params[1], params[2]).double()
    means = params[0].double()
    g = torch.Generator().manual_seed(1)
    outs = []
    for project in (project_gaussians, project_gaussians_numba):
        m, cv = means.clone().requires_grad_(True), covars.clone().requires_grad_(True)
        pr = project(m, cv, viewmats.double(), Ks.double(), 40, 30, calc_compensations=True)
        g.manual_seed(1)
        # Culled splats never receive colour gradients (no tile holds them), only depth ones.
        vis = (pr.radii > 0)[..., None]
        outs_used = (pr.means2d * vis, pr.conics * vis, pr.depths, pr.compensations * vis[..., 0])
        loss = sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum() for t in outs_used)
        loss.backward()
        outs.append((pr, m.grad, cv.grad))
    (p_t, gm_t, gc_t), (p_n, gm_n, gc_n) = outs
    assert torch.equal(p_t.radii, p_n.radii)
    vis = p_t.radii > 0
    for a, b in (
        (p_t.means2d, p_n.means2d),
        (p_t.conics, p_n.conics),
        (p_t.compensations, p_n.compensations),
    ):
        torch.testing.assert_close(a[vis], b[vis], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(gm_t, gm_n, rtol=1e-7, atol=1e-9)
    # Covariances are symmetric; the two backwards split off-diagonal gradients differently, the sums agree.
    torch.testing.assert_close(gc_t + gc_t.transpose(1, 2), gc_n + gc_n.transpose(1, 2), rtol=1e-7, atol=1e-9)
