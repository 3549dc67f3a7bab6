"""``python main.py render gaussians``: PLY + transforms in, one PNG and one float .npy per camera out."""
from __future__ import annotations

import json
import math

import imageio.v3 as iio
import numpy as np
import pytest
import torch

import main
from methods.datasets import load_transforms_cameras
from methods.gaussians.filter3d import compute_3d_filter
from methods.gaussians.model import GaussianModel
from methods.gaussians.ply import save_ply
from methods.gaussians.render_cli import RenderSettings, prepare_cameras, resolve_filter
from render.camera import Camera

W, H = 24, 18


def _cameras() -> list[Camera]:
    return [Camera.look_at(eye, (0.0, 0.0, 0.0), fov_x=0.9, width=W, height=H)
            for eye in ((0.0, -3.5, 1.5), (2.5, 2.0, 1.0))]


@pytest.fixture(scope="module")
def model() -> GaussianModel:
    """A small coloured model with a 3D filter (a Mip-Splatting PLY), all SH bands active."""
    m = GaussianModel.random_in_box(150, -0.8, 0.8, seed=3, sh_degree=1)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        m.sh_dc.copy_(torch.randn(m.sh_dc.shape, generator=g))
        m.sh_rest.copy_(0.3 * torch.randn(m.sh_rest.shape, generator=g))
        m.logit_opacities.fill_(1.0)
    m.filter_3d = compute_3d_filter(m.means, _cameras())
    m.active_sh_degree = m.max_sh_degree
    return m


@pytest.fixture()
def files(model, tmp_path):
    ply = save_ply(model, tmp_path / "model.ply")
    cams = _cameras()
    nerfstudio = {"frames": [{"file_path": f"images/{i}.png", "fl_x": c.fx, "fl_y": c.fy, "cx": c.cx, "cy": c.cy,
                              "w": c.width, "h": c.height, "transform_matrix": c.c2w_opengl().tolist()}
                             for i, c in enumerate(cams)]}
    tpath = tmp_path / "transforms.json"
    tpath.write_text(json.dumps(nerfstudio))
    return ply, tpath


def _run(*args: str) -> int:
    return main.main(["render", "gaussians", *args])


def test_round_trip_pngs_and_npys_match_a_direct_render(model, files, tmp_path, capsys):
    ply, tpath = files
    out = tmp_path / "out"
    assert _run("--ply", str(ply), "--cameras", str(tpath), "--out", str(out), "--zoom", "2",
                "--backend", "torch") == 0
    printed = capsys.readouterr().out
    assert printed.count(" ms (torch) -> view_") == 2 and "per view" in printed
    pngs, npys = sorted(out.glob("*.png")), sorted(out.glob("*.npy"))
    assert len(pngs) == len(npys) == 2
    cams = load_transforms_cameras(tpath)
    for cam, png, npy in zip(cams, pngs, npys):
        img = iio.imread(png)
        assert img.shape[:2] == (2 * H, 2 * W)  # zoom is a sampling rate: z x the pixels, same field of view
        arr = np.load(npy)
        assert arr.dtype == np.float32 and arr.shape == (2 * H, 2 * W, 3)
        with torch.no_grad():  # auto filter on a PLY with filter_3D = Mip-Splatting, white background
            direct = model.render(cam.scaled(2), filter="mip", use_3d_filter=True, background=(1, 1, 1)).color
        np.testing.assert_allclose(arr, direct.numpy(), atol=1e-6, rtol=0)
        assert np.abs(img / 255.0 - np.clip(arr, 0, 1)).max() <= 0.5 / 255 + 1e-6
        assert arr.std() > 0.01  # something was actually drawn


def test_the_default_backend_is_named_per_view_and_matches_the_reference(model, files, tmp_path, capsys):
    """auto = GL here (OpenGL 4.3 on Mesa) or torch without it; either way within 60 dB of the reference."""
    ply, tpath = files
    out = tmp_path / "auto"
    assert _run("--ply", str(ply), "--cameras", str(tpath), "--out", str(out)) == 0
    printed = capsys.readouterr().out
    used = {b for b in ("gl", "torch", "cuda") if f" ms ({b}) -> view_" in printed}
    assert len(used) == 1
    for cam, npy in zip(load_transforms_cameras(tpath), sorted(out.glob("*.npy"))):
        with torch.no_grad():
            ref = model.render(cam, filter="mip", use_3d_filter=True, background=(1, 1, 1), backend="torch").color
        mse = float(np.mean((np.load(npy) - ref.numpy()) ** 2))
        assert mse < 1e-6  # ≥ 60 dB


def test_filter_choice_changes_the_render_and_size_sets_the_base_resolution(files, tmp_path):
    ply, tpath = files
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run("--ply", str(ply), "--cameras", str(tpath), "--out", str(a), "--filter", "3dgs",
                "--size", "40x30", "--zoom", "0.5", "--background", "black") == 0
    assert _run("--ply", str(ply), "--cameras", str(tpath), "--out", str(b), "--filter", "none",
                "--size", "40x30", "--zoom", "0.5", "--background", "black") == 0
    x, y = np.load(a / "view_0000.npy"), np.load(b / "view_0000.npy")
    assert x.shape == y.shape == (15, 20, 3)
    assert np.abs(x - y).max() > 1e-3  # the 0.3 px dilation is visible at this size


def test_nerf_synthetic_transforms_are_accepted(model, tmp_path):
    ply = save_ply(model, tmp_path / "m.ply")
    cams = _cameras()
    doc = {"camera_angle_x": cams[0].fov_x, "w": W, "h": H,
           "frames": [{"file_path": f"./test/r_{i}", "transform_matrix": c.c2w_opengl().tolist()}
                      for i, c in enumerate(cams)]}
    (tmp_path / "transforms_test.json").write_text(json.dumps(doc))
    assert _run("--ply", str(ply), "--cameras", str(tmp_path / "transforms_test.json"), "--out",
                str(tmp_path / "o")) == 0
    assert len(list((tmp_path / "o").glob("*.png"))) == 2


def test_resolve_filter_and_camera_preparation(model):
    plain = GaussianModel.random_in_box(10, seed=0, sh_degree=0)
    assert resolve_filter(model, "auto") == ("mip", True)
    assert resolve_filter(plain, "auto") == ("3dgs", False)
    assert resolve_filter(model, "3dgs") == ("3dgs", False)
    assert resolve_filter(plain, "mip") == ("mip", False)  # no stored filter: 2D filter only
    cam = _cameras()[0]
    (c,) = prepare_cameras([cam], RenderSettings(zoom=4, size=(10, 8)))
    assert (c.width, c.height) == (40, 32) and math.isclose(c.fov_x, cam.fov_x, rel_tol=1e-9)


def _bad_ply(tmp_path):
    p = tmp_path / "bad.ply"
    p.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 10\nproperty float x\nend_header\n\x00\x00")
    return p


@pytest.mark.parametrize("case", ["missing_ply", "garbage_ply", "truncated_ply", "bad_json", "no_frames",
                                  "bad_matrix"])
def test_bad_inputs_fail_in_one_line_with_status_1(case, files, tmp_path, capsys):
    ply, tpath = files
    cams = str(tpath)
    if case == "missing_ply":
        ply = tmp_path / "nope.ply"
    elif case == "garbage_ply":
        ply = tmp_path / "g.ply"
        ply.write_text("hello")
    elif case == "truncated_ply":
        ply = _bad_ply(tmp_path)
    elif case == "bad_json":
        (tmp_path / "t.json").write_text("{ nope")
        cams = str(tmp_path / "t.json")
    elif case == "no_frames":
        (tmp_path / "t.json").write_text(json.dumps({"camera_angle_x": 0.7, "frames": []}))
        cams = str(tmp_path / "t.json")
    elif case == "bad_matrix":
        doc = json.loads(tpath.read_text())
        doc["frames"][1]["transform_matrix"] = [[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
        (tmp_path / "t.json").write_text(json.dumps(doc))
        cams = str(tmp_path / "t.json")
    out = tmp_path / "out"
    assert _run("--ply", str(ply), "--cameras", cams, "--out", str(out)) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mipstudio: "), captured.err
    assert "Traceback" not in captured.err
    assert not out.exists() or not any(out.iterdir())  # nothing half-written


@pytest.mark.parametrize("flag, value, expected", [("--size", "big", "expected WxH"), ("--size", "0x10", "WxH"),
                                                   ("--zoom", "0", "positive number"),
                                                   ("--zoom", "-2", "positive number"),
                                                   ("--filter", "ewa", "invalid choice")])
def test_bad_flags_are_argparse_errors_naming_the_flag(flag, value, expected, files, tmp_path, capsys):
    ply, tpath = files
    out = tmp_path / "out"
    assert _run("--ply", str(ply), "--cameras", str(tpath), "--out", str(out), flag, value) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("mipstudio render gaussians: error: argument " + flag), err
    assert expected in err[-1] and "Traceback" not in "\n".join(err)
    assert not out.exists()


@pytest.mark.parametrize("n", [1, 7, 2500])
def test_big_scene_has_exactly_n_gaussians_on_its_surfaces(n):
    from methods.gaussians.demo import BACKDROP_RADIUS, GROUND_Z, big_scene

    m = big_scene(n, seed=3)
    assert m.num_gaussians == n and m.max_sh_degree == 3
    means = m.means.detach().numpy()
    assert np.isfinite(means).all() and bool(torch.isfinite(m.sh()).all())
    r = np.linalg.norm(means, axis=1)
    on_ground = np.isclose(means[:, 2], GROUND_Z)
    on_backdrop = np.isclose(r, BACKDROP_RADIUS, rtol=1e-5)
    near_objects = r < 1.1  # the torus (outer radius 1.02) and the sphere
    assert (on_ground | on_backdrop | near_objects).all()
    if n >= 1000:  # every surface is populated, the backdrop with ~4%
        assert on_ground.sum() > 0.3 * n and near_objects.sum() > 0.1 * n
        assert 0.02 * n < on_backdrop.sum() < 0.06 * n
    assert torch.equal(big_scene(n, seed=3).means, m.means)  # deterministic per seed


def test_export_demo_ply_writes_a_synthetic_scene_of_n_gaussians(tmp_path, capsys):
    from main import main as cli_main
    from methods.gaussians.ply import load_ply

    out = tmp_path / "big.ply"
    assert cli_main(["export-demo-ply", str(out), "--gaussians", "3000"]) == 0
    assert "3,000 Gaussians" in capsys.readouterr().out
    assert load_ply(out).num_gaussians == 3000
