"""The unbounded scene and its datasets: generation (layout, exact camera round trip, true multi-scale GT, content
at every depth, cancel, cache), the real Mip-NeRF 360 (poses_bounds.npy) and COLMAP text layouts written here from
known cameras, and one-line errors for malformed input."""
from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import replace
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from assets.unbounded_scene import PRESETS, UnboundedSceneSpec, build_scene, render_depth, render_view, sample_cameras
from methods.datasets.nerf_synthetic import DatasetError, area_resize, read_multiscale
from methods.jobs import JobCancelled
from methods.nerf360.dataset import (
    GenerateUnboundedDataset,
    default_unbounded_path,
    detect_layout,
    ensure_unbounded_dataset,
    llff_split,
    load_unbounded,
    qvec_to_rotmat,
    rotmat_to_qvec,
    w2c_to_llff,
)
from render.camera import Camera
from render.mesh_renderer import MeshRenderer

TINY = PRESETS["tiny"]  # 32x24, 12 train / 2 val / 2 test, scales 1/8 … 8
W, H = TINY.width, TINY.height


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg, msg
    return msg


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen360") / "garden_tiny"
    reports = []
    summary = GenerateUnboundedDataset(out, TINY).run(reports.append, lambda: False)
    return out, summary, reports


# ----------------------------------------------------------------------------------------------------------------
# the scene spec and cameras
# ----------------------------------------------------------------------------------------------------------------
def test_presets_and_spec_validation():
    assert set(PRESETS) == {"tiny", "default", "paper"}
    d = PRESETS["default"]
    assert 96 <= d.width <= 128 and (d.n_train, d.n_val, d.n_test) == (100, 10, 20)
    assert d.scales[0] == 1 / 8 and d.scales[-1] == 8.0
    assert UnboundedSceneSpec.from_dict(json.loads(json.dumps(TINY.to_dict()))) == TINY
    with pytest.raises(ValueError, match="unknown unbounded dataset preset 'huge'"):
        UnboundedSceneSpec.preset("huge")
    with pytest.raises(ValueError, match=r"far 800.0 clips the sky dome"):
        TINY.with_(far=800.0)
    with pytest.raises(ValueError, match="puts cameras inside the objects"):
        TINY.with_(radius=1.5)
    with pytest.raises(ValueError, match="exceeds 2048 px"):
        TINY.with_(width=300, height=200)


def test_cameras_ring_the_objects_look_inward_and_splits_are_independent():
    cams = sample_cameras(TINY, "train")
    assert len(cams) == 12 and all((c.width, c.height, c.near, c.far) == (W, H, TINY.near, TINY.far) for c in cams)
    target = TINY.target
    az = []
    for c in cams:
        off = c.position - target
        r = np.linalg.norm(off)
        assert TINY.radius * 0.85 - 1e-9 <= r <= TINY.radius * 1.15 + 1e-9
        el = math.degrees(math.asin(off[2] / r))
        assert TINY.elevation_deg[0] - 1e-9 <= el <= TINY.elevation_deg[1] + 1e-9
        uv, z = c.project(target[None])  # inward: the target is at the image centre, in front
        assert np.allclose(uv[0], [W / 2, H / 2]) and z[0] > 0
        az.append(math.atan2(off[1], off[0]))
    assert np.ptp(np.unwrap(np.sort(az))) > math.pi  # a 360° rig, not one side
    more = sample_cameras(TINY.with_(n_train=20, n_test=5), "train")
    assert all(a == b for a, b in zip(cams, more))  # more views extend, never reshuffle
    assert sample_cameras(TINY.with_(n_train=20), "test") == sample_cameras(TINY, "test")


# ----------------------------------------------------------------------------------------------------------------
# generation
# ----------------------------------------------------------------------------------------------------------------
def test_generation_layout_progress_and_summary(tiny):
    out, summary, reports = tiny
    n_scales = len(TINY.scales)
    total = 12 + 2 + 2 * n_scales
    assert summary["images"] == total and summary["counts"] == {"train": 12, "val": 2, "test": 2}
    assert [r.step for r in reports] == list(range(total + 1)) and reports[0].message == "building scene textures"
    assert "train view 1/12" in [r.message for r in reports] and "test ×1/8 view 2/2" in [r.message for r in reports]
    names = {p.name for p in out.iterdir()}
    assert {"transforms.json", "multiscale.json", "images", "images_test_x1_8", "images_test_x8",
            "transforms_test_x1_8.json", "transforms_test_x8.json", "sparse"} <= names
    assert not any(n.startswith(".") for n in os.listdir(out.parent))  # the temp folder was renamed away
    assert sorted(os.listdir(out / "sparse" / "0")) == ["cameras.txt", "images.txt", "points3D.txt"]
    doc = json.loads((out / "transforms.json").read_text())
    assert len(doc["frames"]) == 16 and doc["camera_model"] == "OPENCV"
    lists = [doc[f"{s}_filenames"] for s in ("train", "val", "test")]
    assert [len(x) for x in lists] == [12, 2, 2]
    assert sorted(sum(lists, [])) == sorted(f["file_path"] for f in doc["frames"])  # disjoint, cover every frame
    for fr in doc["frames"]:
        assert {"file_path", "fl_x", "fl_y", "cx", "cy", "w", "h", "transform_matrix", "near", "far"} <= set(fr)
        assert (fr["w"], fr["h"]) == (W, H) and 0 < fr["near"] < 3 and fr["far"] > 10  # what the view sees
        img = iio.imread(out / fr["file_path"])
        assert img.dtype == np.uint8 and img.shape == (H, W, 3)  # opaque RGB: the environment fills every pixel
    assert max(fr["far"] for fr in doc["frames"]) > TINY.dome_radius  # some views see the sky
    assert doc["scene_radius"] == pytest.approx(max(np.linalg.norm(c.position - TINY.target)
                                                    for s in ("train", "val", "test")
                                                    for c in sample_cameras(TINY, s)))


def test_cameras_round_trip_exactly_and_images_match_the_renderer(tiny):
    out, _, _ = tiny
    for split in ("train", "val", "test"):
        ds = load_unbounded(out, split)
        ref = sample_cameras(TINY, split)
        assert ds.source == "nerfstudio" and ds.origin == "files" and ds.images.shape == (len(ref), H, W, 3)
        assert ds.images.dtype == np.float32 and ds.near.shape == ds.far.shape == (len(ref),)
        for a, b, near, far in zip(ds.cameras, ref, ds.near, ds.far):
            assert np.allclose(a.position, b.position, atol=1e-5)
            assert np.allclose(a.world_to_cam[:3, :3], b.world_to_cam[:3, :3], atol=1e-5)
            assert np.allclose([a.fx, a.fy, a.cx, a.cy], [b.fx, b.fy, b.cx, b.cy], atol=1e-5)
            assert (a.width, a.height) == (b.width, b.height) and (a.near, a.far) == (near, far)
    np.testing.assert_allclose(load_unbounded(out, "train").scene_center, TINY.target)
    ds = load_unbounded(out, "train")
    png = iio.imread(out / "images" / "train_0003.png").astype(np.float32) / 255.0
    assert np.array_equal(ds.images[3], png)
    rgba = render_view(MeshRenderer(), build_scene(TINY), sample_cameras(TINY, "train")[3])
    assert rgba[..., 3].min() > 0.999 and np.abs(ds.images[3] - rgba[..., :3]).max() <= 0.51 / 255
    # the COLMAP text model written alongside describes the same cameras
    a, c = load_unbounded(out, "all"), load_unbounded(out, "all", layout="colmap")
    assert c.source == "colmap" and len(a) == len(c) == 16
    by_name = {p.name: cam for p, cam in zip(c.paths, c.cameras)}
    for p, cam in zip(a.paths, a.cameras):
        other = by_name[p.name]
        assert np.allclose(cam.world_to_cam, other.world_to_cam, atol=1e-9)
        assert np.allclose(cam.K, other.K, atol=1e-12)


def test_multiscale_ground_truth_sizes_and_intrinsics(tiny):
    out, _, _ = tiny
    entries = {e["scale"]: e for e in read_multiscale(out)["splits"]["test"]}
    assert sorted(entries) == list(TINY.scales) and entries[1.0]["folder"] == "images"
    base = load_unbounded(out, "test")
    for s in TINY.scales:
        ds = load_unbounded(out, "test", s)
        w, h = round(s * W), round(s * H)
        assert ds.images.shape == (2, h, w, 3) and ds.origin == "files"
        assert (entries[s]["width"], entries[s]["height"]) == (w, h)
        for cam, cam1 in zip(ds.cameras, base.cameras):
            assert (cam.width, cam.height) == (w, h)
            assert np.allclose([cam.fx, cam.fy, cam.cx, cam.cy], np.array([cam1.fx, cam1.fy, cam1.cx, cam1.cy]) * s,
                               rtol=1e-12)
            assert np.allclose(cam.world_to_cam, cam1.world_to_cam) and (cam.near, cam.far) == (cam1.near, cam1.far)


def test_half_scale_ground_truth_is_a_render_close_to_box_downsampling(tiny):
    out, _, _ = tiny
    full, half = load_unbounded(out, "test"), load_unbounded(out, "test", 0.5)
    boxed = area_resize(full.images, W // 2, H // 2)
    # Both are supersampled renders of the same view (16 vs 64 samples per half-scale pixel, 8-bit PNGs): measured
    # ~34 dB on this scene; 28 dB leaves room for the sampling noise of the high-frequency textures.
    assert _psnr(half.images, boxed) > 28.0
    assert np.abs(half.images - boxed).max() > 2 / 255  # rendered directly, not resampled
    tr = load_unbounded(out, "train", 0.5)  # no rendered GT for train: area-downsampled from scale 1
    assert tr.origin == "area-downsampled" and tr.images.shape == (12, H // 2, W // 2, 3)
    assert np.allclose(tr.images, area_resize(load_unbounded(out, "train").images, W // 2, H // 2), atol=1e-6)
    assert tr.cameras[0].fx == pytest.approx(load_unbounded(out, "train").cameras[0].fx / 2)
    with pytest.raises(DatasetError) as e:
        load_unbounded(out, "train", 2.0)
    assert "no ground truth at scale 2.0 for split 'train'" in _one_line(e)


def test_content_at_every_depth_and_the_dome_is_not_clipped(tiny):
    out, _, _ = tiny
    ds = load_unbounded(out, "train")
    meshes, renderer = build_scene(TINY), MeshRenderer()
    cams = sample_cameras(TINY, "train")
    depth = np.stack([render_depth(renderer, meshes, c) for c in cams])
    assert np.all(np.isfinite(depth))  # every pixel hits something
    # near objects/ground, middle-distance trees/houses/ground, far mountains/sky: each a real share of the pixels
    assert (depth < 5).mean() > 0.05 and ((depth >= 5) & (depth < 150)).mean() > 0.05 and (depth > 400).mean() > 0.05
    # the sky (blue ≫ red; rock, snow, grass and objects are not) fills the top rows of some views, and those pixels
    # are the dome itself: ray distance ≈ dome radius. A far plane short of the dome would leave them empty.
    top = ds.images[:, :3]
    sky = (top[..., 2] > top[..., 0] + 0.3) & (top[..., 2] > 0.55)
    best = int(np.argmax(sky.mean(axis=(1, 2))))
    assert sky[best].mean() > 0.5
    c = cams[best]
    j, i = np.meshgrid(np.arange(W) + 0.5, np.arange(3) + 0.5)
    stretch = np.sqrt(1 + ((j - c.cx) / c.fx) ** 2 + ((i - c.cy) / c.fy) ** 2)
    dist = (depth[best, :3] * stretch)[sky[best]]
    assert np.all(np.abs(dist - TINY.dome_radius) < 6.0), dist
    assert ds.far[best] > TINY.dome_radius
    clipped = render_view(renderer, meshes, replace(c, far=0.8 * TINY.dome_radius))
    assert clipped[:3, :, 3][sky[best]].mean() < 0.05  # holes: what the generator's coverage check refuses


def test_cancel_leaves_nothing_and_overwrite_rules(tmp_path):
    small = TINY.with_(n_train=2, n_val=1, n_test=1, scales=(0.5, 1.0))
    out = tmp_path / "cancelled"
    seen = []
    with pytest.raises(JobCancelled):
        GenerateUnboundedDataset(out, small).run(seen.append, lambda: len(seen) >= 3)
    assert not out.exists() and os.listdir(tmp_path) == []
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="not empty"):
        GenerateUnboundedDataset(out, small).run(lambda p: None, lambda: False)
    GenerateUnboundedDataset(out, small, overwrite=True).run(lambda p: None, lambda: False)
    assert not (out / "keep.txt").exists() and len(load_unbounded(out, "test", 0.5)) == 1
    assert os.listdir(tmp_path) == ["cancelled"]


def test_ensure_unbounded_dataset_generates_once(monkeypatch, tmp_path):
    monkeypatch.setenv("MIPSTUDIO_CACHE", str(tmp_path))
    monkeypatch.setitem(PRESETS, "tiny", TINY.with_(n_train=1, n_val=1, n_test=1, scales=(1.0,)))
    path = ensure_unbounded_dataset("tiny")
    assert path == default_unbounded_path("tiny") and str(path).startswith(str(tmp_path))
    assert load_unbounded(path, "val").images.shape == (1, H, W, 3)

    def boom(self, progress, should_stop):
        raise AssertionError("regenerated a complete dataset")

    monkeypatch.setattr(GenerateUnboundedDataset, "run", boom)
    assert ensure_unbounded_dataset("tiny") == path


# ----------------------------------------------------------------------------------------------------------------
# the real Mip-NeRF 360 layout (poses_bounds.npy) and COLMAP text models, written here from known cameras
# ----------------------------------------------------------------------------------------------------------------
FW, FH = 40, 30  # "full resolution" of the synthetic captures
POINT = np.array([0.3, -0.2, 0.4])  # in front of every camera below


def _known_cameras(n: int = 10) -> list[Camera]:
    out = []
    for k in range(n):
        a = 2 * math.pi * k / n
        eye = (4 * math.cos(a), 4 * math.sin(a), 1.0 + 0.2 * (k % 3))
        w2c = Camera.look_at(eye, (0.1, 0.0, 0.3), fov_x=math.radians(55), width=FW, height=FH).world_to_cam
        out.append(Camera(36.0 + k, 36.0 + k, FW / 2, FH / 2, FW, FH, w2c))  # focal varies: rows stay matched
    return out


def _colour_image(k: int, w: int, h: int) -> np.ndarray:
    """Image k: a unique constant colour (identifies the file) plus a ramp (so area-downsampling is visible)."""
    img = np.zeros((h, w, 3), np.uint8)
    img[...] = (20 * k + 10, 255 - 20 * k, 100)
    img[..., 2] = np.linspace(0, 255, w).astype(np.uint8)[None, :]
    return img


def _assert_same_projection(a: Camera, b: Camera, scale: float = 1.0) -> None:
    uva, za = a.project(POINT[None])
    uvb, zb = b.project(POINT[None])
    assert za[0] > 0 and np.allclose(uva * scale, uvb, atol=1e-6) and np.allclose(za, zb)


@pytest.fixture
def llff_scene(tmp_path):
    """A Mip-NeRF 360-style folder: poses_bounds.npy built BY HAND from the LLFF convention — columns (down, right,
    backwards, centre, [H, W, f]) — images/ at full resolution and images_2/ downsampled, names unsorted on disk."""
    cams = _known_cameras()
    rows = []
    for k, c in enumerate(cams):
        c2w = c.cam_to_world  # OpenCV axes: columns right, down, forward
        right, down, back = c2w[:3, 0], c2w[:3, 1], -c2w[:3, 2]
        pose = np.stack([down, right, back, c2w[:3, 3], [FH, FW, c.fx]], -1)
        rows.append(np.concatenate([pose.ravel(), [0.5 + 0.01 * k, 50.0 + k]]))
    np.save(tmp_path / "poses_bounds.npy", np.asarray(rows))
    (tmp_path / "images").mkdir()
    (tmp_path / "images_2").mkdir()
    for k in reversed(range(len(cams))):
        iio.imwrite(tmp_path / "images" / f"DSC{k:05d}.png", _colour_image(k, FW, FH))
        iio.imwrite(tmp_path / "images_2" / f"DSC{k:05d}.png", _colour_image(k, FW // 2, FH // 2))
    return tmp_path, cams


def test_llff_poses_bounds_load_back_to_the_known_cameras(llff_scene):
    root, cams = llff_scene
    assert detect_layout(root) == "llff"
    test_idx, train_idx = llff_split(10, "test"), llff_split(10, "train")
    assert test_idx == [0, 8] and train_idx == [1, 2, 3, 4, 5, 6, 7, 9] and llff_split(10, "val") == test_idx
    rows = np.load(root / "poses_bounds.npy")
    assert np.allclose(w2c_to_llff(cams[3].world_to_cam, FH, FW, cams[3].fx).ravel(), rows[3, :15])
    for split, idx in (("train", train_idx), ("test", test_idx), ("all", list(range(10)))):
        ds = load_unbounded(root, split)
        assert ds.source == "llff" and ds.images.shape == (len(idx), FH, FW, 3)
        for cam, k in zip(ds.cameras, idx):
            assert np.allclose(cam.world_to_cam, cams[k].world_to_cam, atol=1e-9)
            assert (cam.fx, cam.fy, cam.cx, cam.cy) == (cams[k].fx, cams[k].fx, FW / 2, FH / 2)
            assert (cam.width, cam.height) == (FW, FH)
            assert (cam.near, cam.far) == pytest.approx((0.5 + 0.01 * k, 50.0 + k))
            _assert_same_projection(cams[k], cam)
        assert [p.name for p in ds.paths] == [f"DSC{k:05d}.png" for k in idx]
        assert np.allclose(ds.images[:, 0, 0, 0] * 255, [20 * k + 10 for k in idx], atol=0.5)
    # the convention itself, independent of our converter: a point 5 units along −"backwards" from the camera
    # centre projects to the image centre at depth 5; +right moves it right, +down moves it down
    cam, row = load_unbounded(root, "test").cameras[0], rows[0, :15].reshape(3, 5)
    down, right, back, centre = row[:, 0], row[:, 1], row[:, 2], row[:, 3]
    p = centre - 5 * back
    uv, z = cam.project(np.stack([p, p + 0.5 * right, p + 0.5 * down]))
    assert np.allclose(uv[0], [FW / 2, FH / 2]) and np.allclose(z[0], 5.0)
    assert uv[1, 0] > uv[0, 0] + 1 and abs(uv[1, 1] - uv[0, 1]) < 1e-9
    assert uv[2, 1] > uv[0, 1] + 1 and abs(uv[2, 0] - uv[0, 0]) < 1e-9
    # factor 2 reads images_2/ with intrinsics halved; so does scale 1/2 of factor 1 (a stored folder wins)
    for ds in (load_unbounded(root, "test", factor=2), load_unbounded(root, "test", 0.5)):
        assert ds.images.shape == (2, FH // 2, FW // 2, 3) and ds.origin == "files"
        assert ds.paths[0].parent.name == "images_2"
        for cam, k in zip(ds.cameras, test_idx):
            assert (cam.fx, cam.cx, cam.cy) == (cams[k].fx / 2, FW / 4, FH / 4)
            _assert_same_projection(cams[k], cam, 0.5)
    q = load_unbounded(root, "test", 0.25)  # no images_4/: area-downsampled from images/
    assert q.origin == "area-downsampled" and q.images.shape == (2, round(FH / 4), FW // 4, 3)


def _write_colmap(root: Path, cams: list[Camera], names: list[str], camera_lines: list[str],
                  cam_ids: list[int], points: str = "") -> None:
    model = root / "sparse" / "0"
    model.mkdir(parents=True)
    (model / "cameras.txt").write_text("# Camera list\n" + "\n".join(camera_lines) + "\n")
    lines = ["# Image list with two lines of data per image:"]
    for k in np.random.default_rng(0).permutation(len(cams)):  # file order is not name order
        q, t = rotmat_to_qvec(cams[k].world_to_cam[:3, :3]), cams[k].world_to_cam[:3, 3]
        lines.append(" ".join(map(str, [k + 1, *q, *t, cam_ids[k], names[k]])))
        lines.append("12.5 3.5 -1 20.0 10.0 7" if k == 2 else "")  # POINTS2D: usually present, may be empty
    (model / "images.txt").write_text("\n".join(lines) + "\n")
    if points:
        (model / "points3D.txt").write_text(points)


@pytest.fixture
def colmap_scene(tmp_path):
    """A COLMAP text model of the known cameras: PINHOLE (fx ≠ fy, off-centre principal point), SIMPLE_PINHOLE and
    SIMPLE_RADIAL cameras; 3D points seen by image 1 only."""
    cams = _known_cameras(9)
    camera_lines = ["1 PINHOLE 40 30 35.0 37.0 19.5 16.25", "2 SIMPLE_PINHOLE 40 30 33.0 20.0 15.0",
                    "3 SIMPLE_RADIAL 40 30 31.0 21.0 14.0 0.01"]
    intr = {1: (35.0, 37.0, 19.5, 16.25), 2: (33.0, 33.0, 20.0, 15.0), 3: (31.0, 31.0, 21.0, 14.0)}
    cam_ids = [1 + k % 3 for k in range(9)]
    cams = [Camera(*intr[i], FW, FH, c.world_to_cam) for c, i in zip(cams, cam_ids)]
    names = [f"frame_{k:03d}.png" for k in range(9)]
    pts = cams[1].unproject(np.array([[10.0, 10.0], [20.0, 15.0], [30.0, 5.0]]), np.array([2.0, 3.0, 4.0]))
    points = "# 3D point list\n" + "".join(f"{j + 1} {p[0]} {p[1]} {p[2]} 255 0 0 0.5 2 {j} 2 {j + 3}\n"
                                           for j, p in enumerate(pts))
    _write_colmap(tmp_path, cams, names, camera_lines, cam_ids, points)
    (tmp_path / "images").mkdir()
    for k, n in enumerate(names):
        iio.imwrite(tmp_path / "images" / n, _colour_image(k, FW, FH))
    return tmp_path, cams


def test_colmap_text_model_loads_back_to_the_known_cameras(colmap_scene):
    root, cams = colmap_scene
    assert detect_layout(root) == "colmap"
    with pytest.warns(UserWarning, match=r"distortion of camera\(s\) \[3\] is ignored"):
        ds = load_unbounded(root, "all")
    assert ds.source == "colmap" and ds.meta["ignored_distortion"] == {3: [0.01]}
    assert [p.name for p in ds.paths] == [f"frame_{k:03d}.png" for k in range(9)]  # sorted by name
    for k, cam in enumerate(ds.cameras):
        assert np.allclose(cam.world_to_cam, cams[k].world_to_cam, atol=1e-9)
        assert np.allclose([cam.fx, cam.fy, cam.cx, cam.cy], [cams[k].fx, cams[k].fy, cams[k].cx, cams[k].cy])
        _assert_same_projection(cams[k], cam)
    # bounds: image 2 ("frame_001") sees points at depths 2, 3, 4; the others fall back to Mip-NeRF 360's 0.2 / 1e6
    # scene radii
    assert ds.near[1] == pytest.approx(np.percentile([2, 3, 4], 0.1)) and ds.far[1] == pytest.approx(
        np.percentile([2, 3, 4], 99.9))
    assert ds.near[0] == pytest.approx(0.2 * ds.scene_radius) and ds.far[0] == pytest.approx(1e6 * ds.scene_radius)
    with pytest.warns(UserWarning):
        test = load_unbounded(root, "test")
    assert [p.name for p in test.paths] == ["frame_000.png", "frame_008.png"]


def test_colmap_quaternion_convention():
    """COLMAP stores world-to-camera rotations as Hamilton quaternions (w, x, y, z): 90° about z maps x to y."""
    r = qvec_to_rotmat(np.array([math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)]))
    assert np.allclose(r, [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    rng = np.random.default_rng(3)
    for _ in range(20):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        q = q if q[0] >= 0 else -q
        assert np.allclose(rotmat_to_qvec(qvec_to_rotmat(q)), q, atol=1e-12)


# ----------------------------------------------------------------------------------------------------------------
# malformed input: one line naming the file and the problem
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture
def broken(tiny, tmp_path):
    dst = tmp_path / "ds"
    shutil.copytree(tiny[0], dst)
    return dst


def _edit(path: Path, fn) -> None:
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def _message(fn) -> str:
    """The one-line DatasetError ``fn`` must raise."""
    with pytest.raises(DatasetError) as e:
        fn()
    return _one_line(e)


def test_bad_nerfstudio_inputs(broken, tiny):
    tj = broken / "transforms.json"
    msg = _message(lambda: load_unbounded(broken / "nope"))
    assert "nope: dataset folder not found" in msg, msg
    msg = _message(lambda: load_unbounded(broken, "train", layout="llff"))
    assert "poses_bounds.npy: file not found" in msg, msg
    _edit(tj, lambda d: d["frames"][2].update(transform_matrix=np.eye(3).tolist()))
    msg = _message(lambda: load_unbounded(broken))
    assert "transforms.json: frame 2 'transform_matrix' must be 4x4" in msg, msg

    def poison(d):
        d["frames"][2]["transform_matrix"][0][3] = float("nan")

    shutil.copy(tiny[0] / "transforms.json", tj)
    _edit(tj, poison)
    msg = _message(lambda: load_unbounded(broken))
    assert "transforms.json: frame 2 'transform_matrix' contains NaN" in msg, msg
    tj.write_text("{\"frames\": [")
    msg = _message(lambda: load_unbounded(broken))
    assert "transforms.json: not valid JSON" in msg, msg
    tj.unlink()
    msg = _message(lambda: load_unbounded(broken, layout="nerfstudio"))
    assert "transforms.json: transforms file not found" in msg, msg
    shutil.rmtree(broken / "sparse")
    msg = _message(lambda: load_unbounded(broken))
    assert str(broken) in msg and "no unbounded dataset here" in msg, msg


def test_bad_nerfstudio_frames(broken, tiny):
    tj = broken / "transforms.json"
    _edit(tj, lambda d: d["frames"][0].update(near=-1))
    msg = _message(lambda: load_unbounded(broken))
    assert "transforms.json: frame 0 'near' must be a finite positive number" in msg, msg
    shutil.copy(tiny[0] / "transforms.json", tj)
    _edit(tj, lambda d: d["frames"][1].update(fl_x=float("nan")))
    msg = _message(lambda: load_unbounded(broken))
    assert "transforms.json: frame 1 'fl_x' must be a finite positive number" in msg, msg
    shutil.copy(tiny[0] / "transforms.json", tj)
    _edit(tj, lambda d: d["test_filenames"].append("images/ghost.png"))
    msg = _message(lambda: load_unbounded(broken, "test"))
    assert "'test_filenames' names 1 file(s) with no frame" in msg and "images/ghost.png" in msg, msg
    shutil.copy(tiny[0] / "transforms.json", tj)
    iio.imwrite(broken / "images" / "train_0001.png", np.zeros((10, 20, 3), np.uint8))
    msg = _message(lambda: load_unbounded(broken))
    assert "train_0001.png: image is 20x10 but nerfstudio says 32x24" in msg, msg
    (broken / "images" / "train_0002.png").unlink()
    msg = _message(lambda: load_unbounded(broken))
    assert "transforms.json: frame 2 image 'images/train_0002.png' not found" in msg, msg
    (broken / "images" / "val_0000.png").write_bytes(b"not a png at all")
    msg = _message(lambda: load_unbounded(broken, "val"))
    assert "cannot read image" in msg and "val_0000.png" in msg, msg
    msg = _message(lambda: load_unbounded(broken, "nope"))
    assert "unknown split 'nope'" in msg, msg


def test_bad_llff_inputs(llff_scene):
    root, _ = llff_scene
    pb = root / "poses_bounds.npy"
    good = np.load(pb)
    np.save(pb, good[:, :15])
    msg = _message(lambda: load_unbounded(root))
    assert "poses_bounds.npy: must be an N x 17 numeric array" in msg and "(10, 15)" in msg, msg
    bad = good.copy()
    bad[3, 5] = np.nan
    np.save(pb, bad)
    msg = _message(lambda: load_unbounded(root))
    assert "poses_bounds.npy: row 3 contains NaN" in msg, msg
    bad = good.copy()
    bad[4, 15:] = [5.0, 1.0]
    np.save(pb, bad)
    msg = _message(lambda: load_unbounded(root))
    assert "poses_bounds.npy: row 4 bounds" in msg and "0 < near < far" in msg, msg
    bad = good.copy()
    bad[2, 0:3] *= 2.0  # a scaled "rotation"
    np.save(pb, bad)
    msg = _message(lambda: load_unbounded(root))
    assert "poses_bounds.npy: row 2: rotation is not orthonormal" in msg, msg
    np.save(pb, good[:9])
    msg = _message(lambda: load_unbounded(root))
    assert "poses_bounds.npy: has 9 poses but" in msg and "holds 10 images" in msg, msg
    pb.write_bytes(b"garbage, not numpy")
    msg = _message(lambda: load_unbounded(root, layout="llff"))
    assert "poses_bounds.npy: not a readable .npy array" in msg, msg
    np.save(pb, good)
    iio.imwrite(root / "images" / "DSC00003.png", np.zeros((20, 40, 3), np.uint8))
    msg = _message(lambda: load_unbounded(root))
    assert "DSC00003.png: image is 40x20 but llff says 40x30" in msg, msg
    iio.imwrite(root / "images_2" / "DSC00008.png", np.zeros((9, 20, 3), np.uint8))
    msg = _message(lambda: load_unbounded(root, "test", factor=2))
    assert "DSC00008.png: image is 20x9" in msg and "at factor 2" in msg, msg
    msg = _message(lambda: load_unbounded(root, factor=4))
    assert "images_4: image folder not found" in msg, msg
    msg = _message(lambda: load_unbounded(root, "test", 2.0))
    assert "no images at scale 2.0" in msg, msg


def test_bad_colmap_inputs(colmap_scene):
    root, _ = colmap_scene
    model = root / "sparse" / "0"
    cams_txt, images_txt = (model / "cameras.txt").read_text(), (model / "images.txt").read_text()
    (model / "cameras.txt").write_text(cams_txt.replace("SIMPLE_PINHOLE", "OPENCV_FISHEYE"))
    msg = _message(lambda: load_unbounded(root))
    assert "cameras.txt: line 3: unsupported camera model OPENCV_FISHEYE" in msg and "image_undistorter" in msg, msg
    (model / "cameras.txt").write_text(cams_txt.replace("35.0 37.0 19.5 16.25", "35.0 37.0 19.5"))
    msg = _message(lambda: load_unbounded(root))
    assert "cameras.txt: line 2: PINHOLE takes 4 parameters, got 3" in msg, msg
    (model / "cameras.txt").write_text(cams_txt)
    first = next(line for line in images_txt.splitlines() if line and not line.startswith("#"))
    tok = first.split()
    (model / "images.txt").write_text(images_txt.replace(first, " ".join(tok[:8] + ["7"] + tok[9:])))
    msg = _message(lambda: load_unbounded(root))
    assert "images.txt: line 2: camera id 7 is not in cameras.txt" in msg, msg
    (model / "images.txt").write_text(images_txt.replace(first, " ".join([tok[0], "0", "0", "0", "0"] + tok[5:])))
    msg = _message(lambda: load_unbounded(root))
    assert "images.txt: line 2: quaternion is zero" in msg, msg
    (model / "images.txt").write_text(images_txt.replace(first, " ".join(tok[:5] + ["nan"] + tok[6:])))
    msg = _message(lambda: load_unbounded(root))
    assert "images.txt: line 2: quaternion or translation contains NaN" in msg, msg
    (model / "images.txt").write_text(images_txt)
    (root / "images" / "frame_004.png").unlink()
    with pytest.warns(UserWarning):
        msg = _message(lambda: load_unbounded(root))
        assert "images.txt: image 'frame_004.png' not found" in msg, msg
    (model / "images.txt").unlink()
    msg = _message(lambda: load_unbounded(root))
    assert "images.txt: file not found" in msg, msg
    for f in ("cameras.txt", "points3D.txt"):
        (model / f).unlink()
    (model / "cameras.bin").write_bytes(b"\x00" * 16)
    msg = _message(lambda: load_unbounded(root))
    assert "only a binary COLMAP model" in msg and "model_converter" in msg, msg
