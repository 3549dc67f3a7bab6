"""The CUDA backend against the torch reference on a GPU (skipped without CUDA and CuPy): images within 1e-4, the
gradients of every Gaussian tensor and of the screen-space means within 1e-3 of the largest, the first-use
self-check, and 200 training steps on both backends. Run by bench/gpu_check.sh. The comparisons call the kernels
without the self-check so a failure shows its own figures."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from render.splat.cuda_backend import rasterize_cuda_unchecked, self_check, unavailable_reason

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
    return rasterize_cuda_unchecked(*tensors, vm, K, cam.width, cam.height, sh_degree=degree, filter=FILTERS[filt],
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


def test_the_self_check_passes_and_the_dispatcher_picks_cuda():
    from render.splat import rasterize_camera

    assert self_check(torch.device("cuda")) is None
    cam, tensors = _scene(500, 1, 11)
    with torch.no_grad():
        assert rasterize_camera(*tensors, cam, sh_degree=1, backend="auto").backend == "cuda"
    grad = [t.clone().requires_grad_(True) for t in tensors]
    assert rasterize_camera(*grad, cam, sh_degree=1).backend == "cuda"  # training's choice (backend=None)


def test_200_training_steps_give_the_same_loss_curve_on_both_backends(tmp_path):
    """The tiny scene, test_tiny's schedule compressed to 200 steps (densification at 33, 66, ...), on the GPU with
    each backend: the loss curves agree within 1 % (averaged over 20-step windows: single steps differ in which
    Gaussians densification picks near its thresholds), and so do the final Gaussian counts."""
    from assets.synthetic_scene import SceneSpec
    from methods.datasets import GenerateSyntheticDataset
    from methods.gaussians.train import GaussianTrainer, TrainConfig

    root = tmp_path / "tiny24"
    GenerateSyntheticDataset(root, SceneSpec.preset("tiny").with_(n_train=24)).run(lambda p: None, lambda: False)
    curves, counts = {}, {}
    for backend in ("torch", "cuda"):
        cfg = TrainConfig.preset("test_tiny", device="cuda", backend=backend, eval_split="",
                                 out_dir=str(tmp_path / backend)).scaled_to(200)
        trainer = GaussianTrainer.from_path(root, cfg)
        curves[backend] = np.array([trainer.step()["loss"] for _ in range(200)])
        counts[backend] = trainer.model.num_gaussians
    windows = {k: v.reshape(10, 20).mean(1) for k, v in curves.items()}
    rel = np.abs(windows["cuda"] - windows["torch"]) / windows["torch"]
    assert rel.max() <= 0.01, rel
    assert abs(counts["cuda"] - counts["torch"]) <= 0.02 * counts["torch"], counts
