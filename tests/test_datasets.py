"""Primitives, the synthetic scene, the nerf_synthetic writer/loader (with multi-scale ground truth) and the
generation job: round trips, format fidelity, true multi-scale GT, determinism, cancel, malformed input."""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from assets import primitives as P
from assets.synthetic_scene import PRESETS, SceneSpec, build_scene, sample_cameras
from methods.datasets import (
    DatasetError,
    GenerateSyntheticDataset,
    area_resize,
    default_dataset_path,
    ensure_dataset,
    load_nerf_synthetic,
    load_transforms_cameras,
    read_multiscale,
    scale_label,
)
from methods.datasets.nerf_synthetic import read_image
from methods.jobs import JobCancelled
from render.camera import Camera

TINY = PRESETS["tiny"]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return 10 * math.log10(1.0 / max(mse, 1e-12))


# ----------------------------------------------------------------------------------------------------------------
# primitives
# ----------------------------------------------------------------------------------------------------------------
CLOSED = {
    "sphere": (lambda: P.uv_sphere(0.7, 64, 32), 4 / 3 * math.pi * 0.7 ** 3),
    "box": (lambda: P.box((0.5, 1.0, 2.0)), 1.0),
    "torus": (lambda: P.torus(0.7, 0.25, 128, 48), 2 * math.pi ** 2 * 0.7 * 0.25 ** 2),
    "cylinder": (lambda: P.cylinder(0.5, 1.2, 96), math.pi * 0.25 * 1.2),
}
OPEN = {"disc": lambda: P.disc(0.8), "plane": lambda: P.plane((2.0, 1.0), 3), "tube": lambda: P.cylinder(caps=False)}


def _tri(m):
    p = m.positions.astype(np.float64)[m.faces]
    return p, np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])


@pytest.mark.parametrize("name", list(CLOSED) + list(OPEN))
def test_primitive_winding_normals_and_uv_orientation(name):
    m = CLOSED[name][0]() if name in CLOSED else OPEN[name]()
    p, g = _tri(m)
    area = np.linalg.norm(g, axis=1)
    assert area.min() > 0, "degenerate triangle"
    vn = m.normals[m.faces].mean(1)
    # CCW seen from outside: the geometric normal agrees with the (outward) vertex normals on every face
    assert np.all(np.einsum("ij,ij->i", g, vn) > 0)
    assert np.allclose(np.linalg.norm(m.normals, axis=1), 1.0, atol=1e-5)
    assert m.uvs.min() >= -1e-6 and m.uvs.max() <= 1 + 1e-6
    # texture is not mirrored: dP/du × dP/dv points outward (u right, v up as seen from outside)
    uv = m.uvs.astype(np.float64)[m.faces]
    du1, du2 = uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]
    det = du1[:, 0] * du2[:, 1] - du1[:, 1] * du2[:, 0]
    ok = np.abs(det) > 1e-12  # sphere pole triangles may collapse in UV; everything else must not
    assert ok.mean() > 0.9
    e1, e2, du1, du2, det = p[ok, 1] - p[ok, 0], p[ok, 2] - p[ok, 0], du1[ok], du2[ok], det[ok, None]
    dpdu = (e1 * du2[:, 1:2] - e2 * du1[:, 1:2]) / det
    dpdv = (e2 * du1[:, 0:1] - e1 * du2[:, 0:1]) / det
    assert np.all(np.einsum("ij,ij->i", np.cross(dpdu, dpdv), vn[ok]) > 0)


@pytest.mark.parametrize("name", list(CLOSED))
def test_closed_primitives_are_watertight_outward_with_right_volume(name):
    build, volume = CLOSED[name]
    m = build()
    p, g = _tri(m)
    signed = float(np.einsum("ij,ij->i", p[:, 0], g).sum() / 6.0)  # divergence theorem: > 0 iff outward
    assert signed == pytest.approx(volume, rel=0.02)
    # the outward normal points away from the centre for the convex/centred shapes
    if name in ("sphere", "box", "cylinder"):
        c = p.mean(1)
        assert np.all(np.einsum("ij,ij->i", g, c) > 0)


def test_box_has_per_face_uvs_and_trs_places_meshes():
    b = P.box(2.0)
    assert len(b.positions) == 24 and len(b.faces) == 12
    for k in range(6):  # each face maps the whole [0,1]² texture
        uv = b.uvs[4 * k:4 * k + 4]
        assert set(map(tuple, uv.round(6))) == {(0, 0), (1, 0), (1, 1), (0, 1)}
    m = P.trs((1.0, 2.0, 3.0), (0.0, 0.0, 90.0), 2.0)
    assert np.allclose(m @ [1, 0, 0, 1], [1, 4, 3, 1])
    lo, hi = P.uv_sphere(0.5, model=m).bounds()
    assert np.allclose(lo, [0, 1, 2], atol=1e-3) and np.allclose(hi, [2, 3, 4], atol=1e-3)
    with pytest.raises(ValueError, match="torus"):
        P.torus(0.2, 0.3)


# ----------------------------------------------------------------------------------------------------------------
# scene spec and cameras
# ----------------------------------------------------------------------------------------------------------------
def test_presets_and_spec_validation():
    assert SceneSpec.preset("tiny").resolution == 32 and SceneSpec.preset("default").n_train == 100
    assert SceneSpec.preset("paper").resolution == 800 and max(SceneSpec.preset("paper").scales) == 1.0
    with pytest.raises(ValueError, match="unknown dataset preset 'huge'.*tiny"):
        SceneSpec.preset("huge")
    with pytest.raises(ValueError, match="scales"):
        SceneSpec(scales=(0.5, -1.0))
    with pytest.raises(ValueError, match="unknown scene"):
        SceneSpec(name="nope")
    spec = TINY.with_(scales=(2.0, 0.5, 1.0, 0.5))
    assert spec.scales == (0.5, 1.0, 2.0)
    assert SceneSpec.from_dict(json.loads(json.dumps(TINY.to_dict()))) == TINY


def test_cameras_are_seeded_on_the_hemisphere_band_and_look_at_origin():
    spec = TINY.with_(n_train=200)
    cams = sample_cameras(spec, "train")
    assert len(cams) == 200
    again = sample_cameras(spec, "train")
    assert all(np.array_equal(a.world_to_cam, b.world_to_cam) for a, b in zip(cams, again))
    pos = np.array([c.position for c in cams])
    assert np.allclose(np.linalg.norm(pos, axis=1), spec.radius)
    el = np.degrees(np.arcsin(pos[:, 2] / spec.radius))
    assert el.min() >= 15.0 - 1e-9 and el.max() <= 75.0 + 1e-9 and el.max() - el.min() > 40
    uv, z = cams[0].project(np.zeros((1, 3)))
    assert np.allclose(uv, [[16.0, 16.0]]) and z[0] == pytest.approx(spec.radius)
    # image "up" is world +z: a point above the origin projects above the centre (smaller row)
    uv_up, _ = cams[0].project(np.array([[0.0, 0.0, 0.3]]))
    assert uv_up[0, 1] < 16.0
    # splits are independent streams; changing n_test does not move the train views
    assert not np.allclose(sample_cameras(spec, "test")[0].world_to_cam, cams[0].world_to_cam)
    other = sample_cameras(spec.with_(n_test=7), "train")
    assert np.array_equal(other[5].world_to_cam, cams[5].world_to_cam)
    fewer = sample_cameras(spec.with_(n_train=3), "train")  # a smaller split is a prefix of a larger one
    assert all(np.array_equal(a.world_to_cam, b.world_to_cam) for a, b in zip(fewer, cams))


def test_scene_is_bounded_and_object_centred():
    meshes = build_scene(TINY)
    names = {m.name.split("_")[0] for m in meshes}
    assert names >= {"ground", "sphere", "box", "torus", "post", "pedestal"}
    lo = np.min([m.bounds()[0] for m in meshes], axis=0)
    hi = np.max([m.bounds()[1] for m in meshes], axis=0)
    assert np.all(lo >= -1.1) and np.all(hi <= 1.1)
    for m in meshes:  # high-frequency textures: strong texel-to-texel variation
        t = m.texture[..., :3]
        assert np.abs(np.diff(t, axis=0)).mean() + np.abs(np.diff(t, axis=1)).mean() > 0.03, m.name


def test_scale_labels():
    assert [scale_label(s) for s in (1 / 8, 0.25, 0.5, 1.0, 2.0, 8.0, 1.5)] == ["1_8", "1_4", "1_2", "1", "2", "8",
                                                                               "3_2"]
    with pytest.raises(ValueError):
        scale_label(0.0)


def test_area_resize_is_a_box_filter():
    rng = np.random.default_rng(0)
    img = rng.random((2, 12, 18, 3)).astype(np.float32)
    half = area_resize(img, 9, 6)
    blocks = img.reshape(2, 6, 2, 9, 2, 3).mean(axis=(2, 4))
    assert np.allclose(half, blocks, atol=1e-6)
    third = area_resize(img, 7, 5)  # non-integer factors: weights still sum to one → mean preserved
    assert third.shape == (2, 5, 7, 3)
    assert np.allclose(third.mean(axis=(1, 2)), img.mean(axis=(1, 2)), atol=1e-5)
    with pytest.raises(ValueError, match="only downsamples"):
        area_resize(img, 36, 24)


# ----------------------------------------------------------------------------------------------------------------
# generation (one tiny dataset shared by the module)
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "studio_tiny"
    reports = []
    summary = GenerateSyntheticDataset(out, TINY).run(reports.append, lambda: False)
    return out, summary, reports


def _n_images(spec: SceneSpec) -> int:
    return spec.n_train + spec.n_val + spec.n_test * len(set([1.0, *spec.scales]))


def test_generation_layout_progress_and_summary(tiny_dataset):
    out, summary, reports = tiny_dataset
    total = _n_images(TINY)
    assert summary["images"] == total and summary["counts"] == {"train": 8, "val": 2, "test": 2}
    assert summary["seconds"] > 0 and Path(summary["out_dir"]) == out
    assert [r.step for r in reports] == list(range(0, total + 1)) and all(r.total == total for r in reports)
    assert reports[0].message == "building scene textures"
    msgs = [r.message for r in reports]
    assert "train view 1/8" in msgs and "test ×4 view 2/2" in msgs and "test ×1/8 view 1/2" in msgs
    previews = [r.preview for r in reports if r.preview is not None]
    assert previews and reports[-1].preview is not None
    assert all(p.ndim == 3 and p.shape[2] == 4 and max(p.shape[:2]) <= 256 for p in previews)
    names = {p.name for p in out.iterdir()}
    folders = {"train", "val", "test", "test_x1_8", "test_x1_4", "test_x1_2", "test_x2", "test_x4", "test_x8"}
    assert folders <= names and "multiscale.json" in names
    assert {"transforms_train.json", "transforms_val.json", "transforms_test.json", "transforms_test_x8.json"} <= names
    assert not any(n.startswith(".") for n in os.listdir(out.parent))  # temp folder renamed away
    assert sorted(p.name for p in (out / "train").iterdir()) == sorted(f"r_{i}.png" for i in range(8))


def test_transforms_json_has_exactly_the_nerf_synthetic_keys(tiny_dataset):
    out, _, _ = tiny_dataset
    for split, n in (("train", 8), ("val", 2), ("test", 2)):
        doc = json.loads((out / f"transforms_{split}.json").read_text())
        assert set(doc) == {"camera_angle_x", "frames"}
        assert doc["camera_angle_x"] == TINY.fov_x
        assert len(doc["frames"]) == n
        for i, fr in enumerate(doc["frames"]):
            assert set(fr) == {"file_path", "rotation", "transform_matrix"}
            assert fr["file_path"] == f"./{split}/r_{i}" and fr["rotation"] == 0.0
            m = np.array(fr["transform_matrix"])
            assert m.shape == (4, 4) and np.allclose(m[3], [0, 0, 0, 1])
            assert np.allclose(m[:3, :3].T @ m[:3, :3], np.eye(3), atol=1e-9)
            img = iio.imread(out / f"{fr['file_path']}.png")
            assert img.dtype == np.uint8 and img.shape == (32, 32, 4)


def test_round_trip_cameras_and_images(tiny_dataset):
    from render.mesh_renderer import MeshRenderer

    out, _, _ = tiny_dataset
    rendered = sample_cameras(TINY, "train")
    ds = load_nerf_synthetic(out, "train", white_background=True)
    assert len(ds) == 8 and ds.images.shape == (8, 32, 32, 3) and ds.alphas.shape == (8, 32, 32)
    assert ds.camera_angle_x == TINY.fov_x and ds.source == "files"
    for a, b in zip(ds.cameras, rendered):
        assert np.allclose(a.world_to_cam, b.world_to_cam, atol=1e-6)
        assert (a.width, a.height) == (b.width, b.height)
        assert np.allclose([a.fx, a.fy, a.cx, a.cy], [b.fx, b.fy, b.cx, b.cy], atol=1e-6)
    # images equal the PNG bytes composited over white
    png = iio.imread(out / "train" / "r_3.png").astype(np.float32) / 255.0
    comp = png[..., :3] * png[..., 3:] + (1.0 - png[..., 3:])
    assert np.abs(ds.images[3] - comp).max() <= 1e-6 and np.abs(ds.alphas[3] - png[..., 3]).max() <= 1e-6
    # ... and equal what the renderer produced (premultiplied over a transparent background) within 8-bit rounding
    rgba = MeshRenderer().render(build_scene(TINY), rendered[3], filter="supersampled",
                                 background=(0.0, 0.0, 0.0, 0.0), lighting=False)
    ref = rgba[..., :3] + (1.0 - rgba[..., 3:])
    assert np.abs(ds.images[3] - ref).max() <= 1.01 / 255
    assert np.abs(ds.alphas[3] - rgba[..., 3]).max() <= 0.51 / 255
    black = load_nerf_synthetic(out, "train", white_background=False, max_frames=2)
    assert len(black) == 2 and np.allclose(black.images[1], png_comp_black(out / "train" / "r_1.png"), atol=1e-6)


def png_comp_black(path: Path) -> np.ndarray:
    png = iio.imread(path).astype(np.float32) / 255.0
    return png[..., :3] * png[..., 3:]


def test_multiscale_ground_truth_sizes_intrinsics_and_centre(tiny_dataset):
    out, _, _ = tiny_dataset
    ms = read_multiscale(out)
    entries = {e["scale"]: e for e in ms["splits"]["test"]}
    assert sorted(entries) == sorted(TINY.scales)
    assert entries[1.0]["folder"] == "test" and entries[0.125]["folder"] == "test_x1_8"
    base = load_nerf_synthetic(out, "test")
    f = base.cameras[0].fx
    for s in TINY.scales:
        ds = load_nerf_synthetic(out, "test", scale=s)
        w = round(s * 32)
        assert ds.images.shape == (2, w, w, 3) and ds.source == "files"
        assert (entries[s]["width"], entries[s]["height"]) == (w, w)
        for cam, cam1 in zip(ds.cameras, base.cameras):
            assert cam.fx == pytest.approx(s * f, rel=1e-12) and cam.fy == pytest.approx(s * f, rel=1e-12)
            assert np.allclose(cam.world_to_cam, cam1.world_to_cam)
            uv, _ = cam.project(np.zeros((1, 3)))
            assert np.allclose(uv[0], [w / 2, w / 2], atol=1e-9)
        if w >= 16:  # the object at the origin covers the centre of every view
            c = w // 2
            assert np.all(ds.alphas[:, c - 1:c + 1, c - 1:c + 1].mean(axis=(1, 2)) > 0.5)
        # the per-scale transforms file is a plain nerf_synthetic file: any loader reads it
        cams = load_transforms_cameras(out / entries[s]["transforms"])
        assert (cams[0].width, cams[0].height) == (w, w)
        assert cams[0].fx == pytest.approx(f * w / 32, rel=1e-12)


def test_downscaled_ground_truth_is_a_render_close_to_box_downsampling(tiny_dataset):
    out, _, _ = tiny_dataset
    full = load_nerf_synthetic(out, "test", scale=1.0)
    half = load_nerf_synthetic(out, "test", scale=0.5)
    boxed = area_resize(full.images, 16, 16)
    p = _psnr(half.images, boxed)
    assert p > 25.0, p
    assert np.abs(half.images - boxed).max() > 2 / 255  # rendered directly, not resampled
    # a split without rendered GT at 1/2 is area-downsampled from its full-resolution images instead
    tr = load_nerf_synthetic(out, "train", scale=0.5)
    assert tr.source == "area-downsampled" and tr.images.shape == (8, 16, 16, 3)
    assert tr.cameras[0].fx == pytest.approx(load_nerf_synthetic(out, "train").cameras[0].fx / 2)
    ref = area_resize(load_nerf_synthetic(out, "train").images, 16, 16)
    assert np.allclose(tr.images, ref, atol=1e-6)
    with pytest.raises(DatasetError, match="no ground truth at scale 2.0 for split 'train'"):
        load_nerf_synthetic(out, "train", scale=2.0)


def test_zoom_in_ground_truth_has_real_detail(tiny_dataset):
    """×4 GT is rendered, so it holds detail that upsampling the ×1 image cannot invent."""
    out, _, _ = tiny_dataset
    x1 = load_nerf_synthetic(out, "test", scale=1.0).images
    x4 = load_nerf_synthetic(out, "test", scale=4.0).images
    assert x4.shape[1:3] == (128, 128)
    up = np.repeat(np.repeat(x1, 4, axis=1), 4, axis=2)
    assert _psnr(area_resize(x4, 32, 32), x1) > 25.0  # same scene ...
    assert _psnr(x4, up) < _psnr(area_resize(x4, 32, 32), x1) - 3.0  # ... but finer


def test_generation_is_deterministic(tiny_dataset, tmp_path):
    out, _, _ = tiny_dataset
    spec = TINY.with_(n_train=2, n_val=1, n_test=1, scales=(0.5, 1.0, 2.0))
    a, b = tmp_path / "a", tmp_path / "b"
    GenerateSyntheticDataset(a, spec).run(lambda p: None, lambda: False)
    GenerateSyntheticDataset(b, spec).run(lambda p: None, lambda: False)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 2 + 1 + 3 + 3 + 2 + 1  # images + transforms + multiscale
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    # fewer views are a prefix of more views: the module fixture's first two train images are identical
    big = load_nerf_synthetic(out, "train", max_frames=2).images
    assert np.array_equal(load_nerf_synthetic(a, "train").images, big)


def test_cancel_leaves_nothing_and_overwrite_rules(tmp_path):
    out = tmp_path / "cancelled"
    seen = []
    with pytest.raises(JobCancelled):
        GenerateSyntheticDataset(out, TINY).run(seen.append, lambda: len(seen) >= 3)
    assert len(seen) == 3
    assert not out.exists() and os.listdir(tmp_path) == []
    # refuse a non-empty folder, accept an empty one, replace with overwrite=True
    small = TINY.with_(n_train=1, n_val=1, n_test=1, scales=(1.0,))
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="not empty"):
        GenerateSyntheticDataset(out, small).run(lambda p: None, lambda: False)
    assert (out / "keep.txt").read_text() == "user data"
    GenerateSyntheticDataset(out, small, overwrite=True).run(lambda p: None, lambda: False)
    assert not (out / "keep.txt").exists() and (out / "transforms_train.json").is_file()
    assert sorted(os.listdir(tmp_path)) == ["cancelled"]
    empty = tmp_path / "empty"
    empty.mkdir()
    GenerateSyntheticDataset(empty, small).run(lambda p: None, lambda: False)
    assert len(load_nerf_synthetic(empty, "test")) == 1


def test_ensure_dataset_generates_once(monkeypatch, tmp_path):
    from assets.synthetic_scene import PRESETS as presets

    monkeypatch.setenv("MIPSTUDIO_CACHE", str(tmp_path))
    monkeypatch.setitem(presets, "tiny", TINY.with_(n_train=1, n_val=1, n_test=1, scales=(0.5, 1.0)))
    path = ensure_dataset("tiny")
    assert path == default_dataset_path("tiny") and str(path).startswith(str(tmp_path))
    assert load_nerf_synthetic(path, "test", scale=0.5).images.shape == (1, 16, 16, 3)

    def boom(self, progress, should_stop):
        raise AssertionError("regenerated a complete dataset")

    monkeypatch.setattr(GenerateSyntheticDataset, "run", boom)
    assert ensure_dataset("tiny") == path


# ----------------------------------------------------------------------------------------------------------------
# malformed input: one clear line naming the file and the problem
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture
def broken(tiny_dataset, tmp_path):
    out, _, _ = tiny_dataset
    dst = tmp_path / "ds"
    shutil.copytree(out, dst)
    return dst


def _edit(path: Path, fn) -> None:
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_missing_transforms_file(broken):
    (broken / "transforms_val.json").unlink()
    with pytest.raises(DatasetError) as e:
        load_nerf_synthetic(broken, "val")
    assert "transforms_val.json" in _one_line(e) and "not found" in str(e.value)
    with pytest.raises(DatasetError, match="dataset folder not found"):
        load_nerf_synthetic(broken / "nope", "train")


def test_bad_json_and_missing_keys(broken):
    (broken / "transforms_val.json").write_text("{\"frames\": [")
    with pytest.raises(DatasetError, match=r"transforms_val.json: not valid JSON"):
        load_nerf_synthetic(broken, "val")
    _edit(broken / "transforms_train.json", lambda d: d.pop("camera_angle_x"))
    with pytest.raises(DatasetError, match=r"transforms_train.json: frame 0 has no intrinsics.*camera_angle_x"):
        load_nerf_synthetic(broken, "train")
    _edit(broken / "transforms_test.json", lambda d: d["frames"][1].pop("transform_matrix"))
    with pytest.raises(DatasetError, match=r"transforms_test.json: frame 1 has no 'transform_matrix'"):
        load_nerf_synthetic(broken, "test")


def test_3x3_matrix(broken):
    _edit(broken / "transforms_train.json",
          lambda d: d["frames"][2].update(transform_matrix=np.eye(3).tolist()))
    with pytest.raises(DatasetError) as e:
        load_nerf_synthetic(broken, "train")
    assert "transforms_train.json: frame 2 'transform_matrix' must be 4x4, got shape (3, 3)" in _one_line(e)


def test_nan_matrix(broken):
    def poison(d):
        d["frames"][0]["transform_matrix"][0][3] = float("nan")

    _edit(broken / "transforms_train.json", poison)
    with pytest.raises(DatasetError) as e:
        load_nerf_synthetic(broken, "train")
    assert "frame 0 'transform_matrix' contains NaN" in _one_line(e)


def test_missing_image_and_size_mismatch(broken):
    (broken / "train" / "r_4.png").unlink()
    with pytest.raises(DatasetError) as e:
        load_nerf_synthetic(broken, "train")
    assert "frame 4 image './train/r_4' not found" in _one_line(e)
    iio.imwrite(broken / "val" / "r_1.png", np.zeros((20, 24, 4), np.uint8))
    with pytest.raises(DatasetError, match=r"r_1.png: image is 24x20 but earlier images .* are 32x32"):
        load_nerf_synthetic(broken, "val")
    iio.imwrite(broken / "test_x2" / "r_0.png", np.zeros((32, 32, 4), np.uint8))
    with pytest.raises(DatasetError, match=r"test_x2/r_0.png: image is 32x32 but transforms_test_x2.json implies 64x"):
        load_nerf_synthetic(broken, "test", scale=2.0)


def test_frame_that_is_not_an_image_is_one_plain_line(broken):
    """A corrupt frame must name the file, not suggest installing imageio video plugins."""
    bad = broken / "val" / "r_1.png"
    bad.write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(DatasetError) as e:
        load_nerf_synthetic(broken, "val")
    msg = _one_line(e)
    assert msg == (f"cannot read image {bad}: not a PNG/JPEG/BMP/TIFF/GIF/WebP image imageio can decode; "
                   f"check the file or pass another image")
    with pytest.raises(DatasetError) as e:
        read_image(bad)
    assert _one_line(e) == msg


# ----------------------------------------------------------------------------------------------------------------
# other producers' files: real nerf_synthetic quirks and nerfstudio transforms
# ----------------------------------------------------------------------------------------------------------------
def _c2w(eye) -> np.ndarray:
    return Camera.look_at(eye, (0, 0, 0)).c2w_opengl()


def test_real_nerf_synthetic_quirks(tmp_path):
    """Blender's files: paths with or without './', a non-zero rotation, extra keys, RGB or RGBA PNGs."""
    root = tmp_path / "lego"
    (root / "train").mkdir(parents=True)
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (40, 40, 4), dtype=np.uint8)
    iio.imwrite(root / "train" / "r_0.png", rgba)
    iio.imwrite(root / "train" / "r_1.png", rgba[..., :3])
    frames = [{"file_path": "./train/r_0", "rotation": 0.012566370614359171,
               "transform_matrix": _c2w((4, 0, 1)).tolist()},
              {"file_path": "train/r_1.png", "rotation": 0.0, "transform_matrix": _c2w((0, 4, 2)).tolist(),
               "extra": [1, 2]}]
    (root / "transforms_train.json").write_text(json.dumps({"camera_angle_x": 0.6911112070083618, "frames": frames,
                                                           "note": "x"}))
    ds = load_nerf_synthetic(root, "train", white_background=True)
    f = 0.5 * 40 / math.tan(0.5 * 0.6911112070083618)
    assert ds.cameras[0].fx == pytest.approx(f) and np.allclose(ds.cameras[1].position, [0, 4, 2])
    a = rgba[..., 3:] / 255.0
    assert np.allclose(ds.images[0], rgba[..., :3] / 255.0 * a + (1 - a), atol=1e-6)
    assert np.allclose(ds.images[1], rgba[..., :3] / 255.0, atol=1e-6) and np.all(ds.alphas[1] == 1.0)
    third = load_nerf_synthetic(root, "train", scale=0.3, white_background=False)  # 40 → 12 px, area filter
    assert third.images.shape == (2, 12, 12, 3) and third.cameras[0].width == 12
    assert third.cameras[0].fx == pytest.approx(f * 12 / 40)
    full_black = load_nerf_synthetic(root, "train", white_background=False).images
    assert np.allclose(third.images.mean(axis=(1, 2)), full_black.mean(axis=(1, 2)), atol=1e-5)


def test_nerfstudio_transforms_global_and_per_frame_intrinsics(tmp_path):
    doc = {"camera_model": "OPENCV", "fl_x": 500.0, "fl_y": 510.0, "cx": 321.0, "cy": 239.0, "w": 640, "h": 480,
           "k1": 0.0, "frames": [
               {"file_path": "images/frame_00001.png", "transform_matrix": _c2w((3, 1, 1)).tolist()},
               {"file_path": "images/frame_00002.png", "transform_matrix": _c2w((1, 3, 2)).tolist(),
                "fl_x": 250.0, "fl_y": 250.0, "cx": 160.0, "cy": 120.0, "w": 320, "h": 240}]}
    path = tmp_path / "transforms.json"
    path.write_text(json.dumps(doc))
    a, b = load_transforms_cameras(tmp_path)  # a folder means its transforms.json; no images needed
    assert (a.fx, a.fy, a.cx, a.cy, a.width, a.height) == (500.0, 510.0, 321.0, 239.0, 640, 480)
    assert (b.fx, b.fy, b.cx, b.cy, b.width, b.height) == (250.0, 250.0, 160.0, 120.0, 320, 240)
    assert np.allclose(a.c2w_opengl(), doc["frames"][0]["transform_matrix"], atol=1e-12)
    assert np.allclose(b.position, [1, 3, 2])
    # OpenGL c2w → OpenCV: the look-at target projects to the principal point
    uv, z = a.project(np.zeros((1, 3)))
    assert np.allclose(uv[0], [321.0, 239.0]) and z[0] > 0
    doc["frames"][1]["w"] = "wide"
    path.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=r"transforms.json: frame 1 'w' must be a number"):
        load_transforms_cameras(path)
    del doc["w"], doc["h"], doc["frames"][1]["w"], doc["frames"][1]["h"]
    path.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=r"frame 0 image 'images/frame_00001.png' not found"):
        load_transforms_cameras(path)
    with pytest.raises(DatasetError, match=r"missing.json: transforms file not found"):
        load_transforms_cameras(tmp_path / "missing.json")
