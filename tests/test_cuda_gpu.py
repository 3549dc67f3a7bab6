"""The CUDA backend against the torch reference on a GPU (skipped without CUDA and CuPy): images within 1e-4, the
gradients of every Gaussian tensor and of the screen-space means within 1e-3 of the largest. Run by
bench/gpu_check.sh, which also sets MIPSTUDIO_CUDA_BACKEND=1 so the backend registers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from render.splat.cuda_backend import rasterize_cuda, unavailable_reason

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(unavailable_reason() is not None, reason=f"CUDA backend: {unavailable_reason()}")]


def _scene(n: int, degree: int, seed: int):
    from tests.test_cuda_math import camera, scene

    cam = camera()
    means, quats, scales, opac = scene(cam, n, seed)
    sh = np.random.default_rng(seed + 1).normal(0, 0.4, (n, (degree + 1) ** 2, 3)).astype(np.float32)
    tensors = [torch.tensor(a, device="cuda") for a in (means, quats, scales, np.sqrt(opac), sh)]
    return cam, tensors


def _render(backend: str, cam, tensors, filt: str, degree: int, bg):
    from render.splat import rasterize_camera
    from render.splat.projection import FILTERS

    if backend == "torch":
        return rasterize_camera(*tensors, cam, filter=filt, sh_degree=degree, background=bg, backend="torch")
    vm = torch.tensor(np.asarray(cam.world_to_cam), dtype=torch.float32, device="cuda")
    K = torch.tensor(np.asarray(cam.K), dtype=torch.float32, device="cuda")
    return rasterize_cuda(*tensors, vm, K, cam.width, cam.height, sh_degree=degree, filter=FILTERS[filt],
                          background=torch.tensor(bg, device="cuda"), near=0.2, tile_size=16)


@pytest.mark.parametrize("filt,degree,bg", [("3dgs", 3, (0.0, 0.0, 0.0)), ("mip", 2, (1.0, 1.0, 1.0)),
                                            ("none", 0, (0.2, 0.5, 0.8)), ("mip", 1, (0.0, 0.0, 0.0))])
def test_forward_matches_the_reference(filt, degree, bg):
    cam, tensors = _scene(3000, degree, 3)
    with torch.no_grad():
        ref = _render("torch", cam, tensors, filt, degree, bg)
        out = _render("cuda", cam, tensors, filt, degree, bg)
    for name in ("color", "alpha"):
        err = float((getattr(out, name) - getattr(ref, name)).abs().max())
        assert err <= 1e-4, (name, err)
    assert float((out.depth - ref.depth).abs().max()) <= 1e-4 * float(ref.depth.abs().max())
    assert torch.equal(out.radii.cpu(), ref.radii.cpu())
    assert float((out.n_contrib != ref.n_contrib).float().mean()) < 1e-3


@pytest.mark.parametrize("filt", ["3dgs", "mip"])
def test_gradients_match_the_reference(filt):
    cam, base = _scene(2000, 3, 5)
    g = torch.Generator(device="cuda").manual_seed(0)
    grads = {}
    for backend in ("torch", "cuda"):
        tensors = [t.clone().requires_grad_(True) for t in base]
        out = _render(backend, cam, tensors, filt, 3, (0.0, 0.0, 0.0))
        w = torch.randn(out.color.shape, device="cuda", generator=g.manual_seed(1))
        loss = (out.color * w).sum() + out.alpha.sum() * 0.1
        loss.backward()
        grads[backend] = [t.grad for t in tensors] + [out.means2d.grad]
    names = ("means", "quats", "scales", "opacities", "sh", "means2d")
    for name, want, got in zip(names, grads["torch"], grads["cuda"]):
        assert got is not None, name
        err = float((got - want).abs().max() / want.abs().max().clamp_min(1e-12))
        assert err <= 1e-3, (name, err)


def test_the_demo_scene_renders_within_parity():
    from methods.gaussians.demo import demo_cameras, demo_model

    model = demo_model().to("cuda")
    cam = demo_cameras(size=256)[2]
    scales, opac = model.effective(True)
    tensors = [model.means.detach(), model.rotations.detach(), scales.detach(), opac.detach(), model.sh().detach()]
    with torch.no_grad():
        ref = _render("torch", cam, tensors, "mip", 3, (0.0, 0.0, 0.0))
        out = _render("cuda", cam, tensors, "mip", 3, (0.0, 0.0, 0.0))
    mse = float(((out.color - ref.color) ** 2).mean())
    assert mse < 1e-5  # ≥ 50 dB
