"""Procedural textures, bundled photos, the fish mesh, the atomic asset cache (the project's one atomic-write
primitive) and the image reader every loader shares."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from assets import cache as cache_mod
from assets.cache import atomic_open, atomic_save_image, atomic_write_bytes, atomic_write_text, cached, cache_dir
from assets.fish import fish_paths, load_fish, load_obj, make_fish, write_fish
from assets.images import read_image
from assets.photos import list_photos, load_photo, resize_image
from assets.textures import SEEDED_TEXTURES, TEXTURES, list_textures, make_texture, zone_plate

FISH_TEX = 128  # small texture keeps the fish tests fast; geometry does not depend on it


@pytest.fixture(scope="module")
def fish():
    return make_fish(FISH_TEX)


@pytest.fixture()
def tmp_cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv(cache_mod.CACHE_ENV, str(root))
    return root


# ----- textures -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(TEXTURES))
def test_texture_shape_dtype_range(name):
    tex = make_texture(name, 64, seed=3)
    assert tex.shape == (64, 64, 3) and tex.dtype == np.float32
    assert np.isfinite(tex).all() and tex.min() >= 0.0 and tex.max() <= 1.0
    # high-frequency by design: neighbouring texels differ noticeably somewhere
    assert np.abs(np.diff(tex, axis=1)).max() > 0.2


@pytest.mark.parametrize("name", sorted(TEXTURES))
def test_texture_determinism_and_seeding(name):
    a, b, c = make_texture(name, 48, 1), make_texture(name, 48, 1), make_texture(name, 48, 2)
    assert np.array_equal(a, b)
    if name in SEEDED_TEXTURES:
        assert not np.array_equal(a, c)
    else:
        assert np.array_equal(a, c)


def test_unknown_texture_lists_valid_names():
    with pytest.raises(ValueError, match="zone_plate"):
        make_texture("plaid")
    assert list_textures() == sorted(TEXTURES)


def test_checkerboard_is_exactly_binary_and_balanced():
    tex = make_texture("checkerboard", 64)
    assert set(np.unique(tex)) == {0.0, 1.0}
    assert tex.mean() == pytest.approx(0.5)


def test_zone_plate_frequency_rises_to_nyquist_at_edge():
    size = 256
    row = zone_plate(size)[size // 2, :, 0].astype(np.float64)
    right = row[size // 2:]                                    # centre -> right edge, r = 0 .. 127
    steps = np.abs(np.diff(right))
    windows = [steps[i:i + 16].mean() for i in range(0, 112, 16)]
    assert all(b > a for a, b in zip(windows, windows[1:])), windows
    # local frequency r/size cycles per texel: zero crossings per texel = 2·r/size, ≈1 (Nyquist) at the edge
    for r0 in (32, 96):
        seg = right[r0:r0 + 16] - 0.5
        crossings = np.count_nonzero(np.signbit(seg[1:]) != np.signbit(seg[:-1])) / 15
        expected = 2 * (r0 + 8) / size
        assert crossings == pytest.approx(expected, abs=0.15)


def test_fish_scales_non_square_with_bright_belly_row():
    from assets.textures import fish_scales

    tex = fish_scales(96, 0, height=64, ss=1)
    assert tex.shape == (64, 96, 3)
    # the back is at the top and bottom rows: same colour family on both, belly (middle) brighter
    assert tex[32].mean() > tex[0].mean() + 0.1 and tex[32].mean() > tex[-1].mean() + 0.1


# ----- photos -------------------------------------------------------------------------------------------------
def test_photos_shape_and_range():
    names = list_photos()
    for required in ("astronaut", "coffee", "chelsea", "rocket", "brick", "grass", "gravel", "camera"):
        assert required in names
    img = load_photo("astronaut", 64)
    assert img.shape == (64, 64, 3) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0 and img.std() > 0.05
    grey = load_photo("camera")
    assert grey.shape == (512, 512, 3) and np.array_equal(grey[..., 0], grey[..., 2])
    crop = load_photo("coffee", 50)  # 400x600 -> centre 400x400 -> 50 (non-integer path of the resize)
    assert crop.shape == (50, 50, 3) and 0.0 <= crop.min() and crop.max() <= 1.0


def test_unknown_photo_lists_valid_names():
    with pytest.raises(ValueError, match="astronaut") as e:
        load_photo("mona_lisa")
    assert "mona_lisa" in str(e.value)


def test_resize_integer_factor_is_exact_box_average():
    rng = np.random.default_rng(0)
    img = rng.random((8, 8, 3)).astype(np.float32)
    small = resize_image(img, 2, 2)
    np.testing.assert_allclose(small[0, 1], img[0:4, 4:8].mean(axis=(0, 1)), atol=1e-6)


def test_photo_downsample_is_antialiased():
    # a one-texel checkerboard must become flat grey, not a new pattern
    img = np.indices((90, 90)).sum(0) % 2
    img = np.repeat(img[..., None], 3, 2).astype(np.float32)
    small = resize_image(img, 40, 40)  # non-integer factor 2.25
    assert abs(small.mean() - 0.5) < 0.02 and small.std() < 0.06


# ----- cache --------------------------------------------------------------------------------------------------
def test_cache_dir_honours_env(tmp_cache):
    assert cache_dir() == tmp_cache and tmp_cache.is_dir()


def test_atomic_write_missing_folder_is_clear_and_leaves_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic_write_bytes(tmp_path / "nope" / "x.bin", b"123")
    assert not (tmp_path / "nope").exists()
    target = tmp_path / "x.bin"
    atomic_write_bytes(target, b"abc")
    assert target.read_bytes() == b"abc" and os.listdir(tmp_path) == ["x.bin"]


def test_atomic_open_is_the_one_primitive(tmp_path):
    """Checkpoints, PLYs, CLI outputs and assets all publish through atomic_open: check its contract once."""
    from methods import io as mio

    assert mio.atomic_open is atomic_open  # methods re-exports it rather than keeping a second copy
    target = tmp_path / "notes.txt"
    with atomic_open(target, "w") as f:
        f.write("héllo\n")
        assert not target.exists() and len(os.listdir(tmp_path)) == 1  # only the hidden temp file so far
    assert target.read_bytes() == "héllo\n".encode("utf-8") and os.listdir(tmp_path) == ["notes.txt"]
    assert (target.stat().st_mode & 0o777) == 0o644  # not mkstemp's private 0600
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_open(target, "wb") as f:
            f.write(b"partial")
            raise RuntimeError("boom")
    assert target.read_text() == "héllo\n" and os.listdir(tmp_path) == ["notes.txt"]  # old content, no temp
    missing = tmp_path / "no" / "such" / "x.bin"
    with pytest.raises(FileNotFoundError) as ei:
        with atomic_open(missing):
            pass
    assert str(ei.value) == f"cannot write {missing}: folder {missing.parent} does not exist; create it or pick " \
                           f"another path"
    with atomic_open(missing, parents=True) as f:
        f.write(b"ok")
    assert missing.read_bytes() == b"ok"
    assert atomic_write_text(tmp_path / "t.txt", "a\nb") == tmp_path / "t.txt"
    assert (tmp_path / "t.txt").read_bytes() == b"a\nb"
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(target, "a"):
            pass


@pytest.mark.parametrize("content", [b"", b"hello world\n", np.random.default_rng(0).bytes(3000),
                                     b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
@pytest.mark.parametrize("name", ["x.png", "x.jpg", "x.txt"])
def test_read_image_rejects_non_images_in_one_plain_line(tmp_path, content, name):
    """imageio's own error advises 'pip install imageio[pyav]' with a doubled backtick; users need the file
    named and what to do, nothing else."""
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(ValueError) as ei:
        read_image(p)
    msg = str(ei.value)
    assert msg == f"cannot read image {p}: not a PNG/JPEG/BMP/TIFF/GIF/WebP image imageio can decode; " \
                  f"check the file or pass another image"
    assert "pip" not in msg and "`" not in msg and "\n" not in msg


def test_read_image_reads_images_and_names_missing_files(tmp_path):
    img = np.linspace(0, 1, 4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)
    raw = read_image(atomic_save_image(tmp_path / "a.png", img))
    assert raw.shape == (4, 5, 3) and raw.dtype == np.uint8 and raw[-1, -1, -1] == 255
    with pytest.raises(FileNotFoundError, match="image not found"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="is a folder"):
        read_image(tmp_path)


def test_fish_texture_that_is_not_an_image_is_one_line(tmp_path):
    (tmp_path / "m.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3/1\n")
    (tmp_path / "tex.png").write_text("not a picture")
    with pytest.raises(ValueError, match=r"cannot read image .*tex\.png: not a PNG/JPEG"):
        load_obj(tmp_path / "m.obj", tmp_path / "tex.png")


def test_atomic_save_image_round_trip_and_bad_input(tmp_path):
    import imageio.v3 as iio

    img = np.linspace(0, 1, 4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)
    p = atomic_save_image(tmp_path / "a.png", img)
    back = iio.imread(p).astype(np.float32) / 255
    np.testing.assert_allclose(back, img, atol=0.5 / 255 + 1e-6)
    with pytest.raises(ValueError, match="NaN"):
        atomic_save_image(tmp_path / "b.png", np.full((2, 2, 3), np.nan))
    with pytest.raises(ValueError, match="shape"):
        atomic_save_image(tmp_path / "c.png", np.zeros((2, 2, 5)))
    assert sorted(os.listdir(tmp_path)) == ["a.png"]


def test_cached_builds_once_and_cleans_up_failures(tmp_cache):
    calls = []

    def build(folder: Path) -> None:
        calls.append(folder)
        (folder / "data.txt").write_text("hello")

    d1 = cached("thing", build, version=1)
    d2 = cached("thing", build, version=1)
    assert d1 == d2 and len(calls) == 1 and (d1 / "data.txt").read_text() == "hello"
    cached("thing", build, version=2)
    assert len(calls) == 2

    def broken(folder: Path) -> None:
        (folder / "half.txt").write_text("partial")
        raise RuntimeError("builder died")

    with pytest.raises(RuntimeError, match="builder died"):
        cached("broken", broken)
    assert sorted(p.name for p in tmp_cache.iterdir()) == ["thing-v1", "thing-v2"]
    with pytest.raises(ValueError, match="cache name"):
        cached("../escape", build)


# ----- fish ---------------------------------------------------------------------------------------------------
def test_fish_mesh_shapes_and_uvs(fish):
    n = len(fish.positions)
    assert fish.positions.shape == (n, 3) and fish.normals.shape == (n, 3) and fish.uvs.shape == (n, 2)
    assert fish.faces.dtype == np.int32 and fish.faces.min() >= 0 and fish.faces.max() < n
    assert fish.texture.shape == (FISH_TEX, FISH_TEX, 3)
    assert fish.uvs.min() >= 0.0 and fish.uvs.max() <= 1.0
    np.testing.assert_allclose(np.linalg.norm(fish.normals, axis=1), 1.0, atol=1e-5)


def test_fish_dimensions_and_orientation(fish):
    lo, hi = fish.bounds()
    assert hi[0] - lo[0] == pytest.approx(2.0, abs=0.1)          # ~2 units long along x
    assert abs(lo[0] + hi[0]) < 0.1 and abs(lo[1] + hi[1]) < 1e-5  # centred, mirror-symmetric in y
    assert hi[2] > 0.4 and hi[2] > -lo[2]                         # dorsal fin sticks up (+z)
    # swims toward +x: the pointed nose (thin body, no fins) is at +x, the forked tail at -x
    nose = fish.positions[np.argmax(fish.positions[:, 0])]
    assert nose[0] == pytest.approx(1.0, abs=1e-6) and abs(nose[2]) < 0.05
    tail = fish.positions[fish.positions[:, 0] < -0.95]
    assert np.ptp(tail[:, 2]) > 0.5                               # the fork spans a lot of height


def test_fish_body_is_closed_and_outward(fish):
    import trimesh

    tm = trimesh.Trimesh(fish.positions, fish.faces, process=True)
    parts = tm.split(only_watertight=False)
    closed = [p for p in parts if p.is_watertight]
    assert len(closed) == 1 and len(parts) == 4  # body + tail + dorsal + anal fin
    body = closed[0]
    assert body.volume > 0.05                    # positive: faces wind counter-clockwise seen from outside
    assert body.bounds[1][0] == pytest.approx(1.0, abs=1e-6)
    # every triangle's winding agrees with its smooth vertex normals (the renderer's lighting relies on it)
    p, f = fish.positions.astype(np.float64), fish.faces
    fn = np.cross(p[f[:, 1]] - p[f[:, 0]], p[f[:, 2]] - p[f[:, 0]])
    vn = fish.normals[f].sum(axis=1)
    ok = (fn * vn).sum(1) > 0
    assert ok.mean() > 0.99


def test_fish_uv_unwrap_is_not_heavily_stretched(fish):
    p, u, f = fish.positions.astype(np.float64), fish.uvs.astype(np.float64), fish.faces
    body = f[(p[f][:, :, 1] != 0).any(1)]       # fins lie in y = 0
    e = np.stack([p[body[:, 1]] - p[body[:, 0]], p[body[:, 2]] - p[body[:, 0]]], 2)
    d = np.stack([u[body[:, 1]] - u[body[:, 0]], u[body[:, 2]] - u[body[:, 0]]], 2)
    keep = np.abs(np.linalg.det(d)) > 1e-12
    assert keep.mean() > 0.99                    # no collapsed UV triangles (besides none at all)
    s = np.linalg.svd(e[keep] @ np.linalg.inv(d[keep]), compute_uv=False)
    aspect = s[:, 0] / s[:, 1]
    area = 0.5 * np.linalg.norm(np.cross(e[keep][:, :, 0], e[keep][:, :, 1]), axis=1)
    order = np.argsort(aspect)
    cum = np.cumsum(area[order]) / area.sum()
    median, p90 = (aspect[order][np.searchsorted(cum, q)] for q in (0.5, 0.9))
    assert median < 1.6 and p90 < 2.5
    # body and fins use disjoint atlas regions
    fins = np.unique(f[(p[f][:, :, 1] == 0).all(1)])
    assert u[fins, 1].max() <= 0.25 and u[np.unique(body), 1].min() >= 0.25


def test_fish_is_deterministic(fish):
    again = make_fish(FISH_TEX)
    for name in ("positions", "normals", "uvs", "faces", "texture"):
        assert np.array_equal(getattr(fish, name), getattr(again, name)), name


def test_fish_obj_round_trip(tmp_path):
    obj, png = write_fish(tmp_path, texture_size=64)
    assert sorted(os.listdir(tmp_path)) == ["fish.mtl", "fish.obj", "fish.png"]
    text = obj.read_text()
    assert "mtllib fish.mtl" in text and "\nvt " in text and "\nvn " in text and "\nf " in text
    assert "map_Kd fish.png" in (tmp_path / "fish.mtl").read_text()
    ref = make_fish(64)
    for loaded in (load_fish(obj, png), load_obj(obj)):  # explicit PNG, and the PNG named by the MTL
        np.testing.assert_allclose(loaded.positions, ref.positions, atol=1e-6)
        np.testing.assert_allclose(loaded.uvs, ref.uvs, atol=1e-6)
        np.testing.assert_allclose(loaded.normals, ref.normals, atol=1e-5)
        assert np.array_equal(loaded.faces, ref.faces)
        np.testing.assert_allclose(loaded.texture, ref.texture, atol=0.5 / 255 + 1e-6)


def test_load_obj_general_layout(tmp_path):
    # a quad with separate v/vt indices, a negative index and no normals: triangulated, normals computed
    (tmp_path / "q.obj").write_text(
        "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\n"
        "vt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nvt 0.5 0.5\n"
        "f 1/1 2/2 3/3 -1/4\n")
    m = load_obj(tmp_path / "q.obj")
    assert m.faces.shape == (2, 3) and len(m.positions) == 4
    np.testing.assert_allclose(m.normals, np.tile([0, 0, 1], (4, 1)), atol=1e-6)
    np.testing.assert_allclose(m.uvs[m.faces[1, 2]], [0, 1])
    assert m.texture.shape == (1, 1, 3)  # no material: plain white


def test_load_obj_malformed_reports_line(tmp_path):
    (tmp_path / "bad.obj").write_text("v 0 0 0\nv 1 0 0\nvt 0 0\nf 1/1 2/1 7/1\n")
    with pytest.raises(ValueError, match=r"bad\.obj:4: index 7"):
        load_obj(tmp_path / "bad.obj")
    (tmp_path / "bad2.obj").write_text("v 0 0 zero\n")
    with pytest.raises(ValueError, match=r"bad2\.obj:1: malformed 'v'"):
        load_obj(tmp_path / "bad2.obj")
    with pytest.raises(OSError, match="cannot read OBJ"):
        load_obj(tmp_path / "missing.obj")


def test_write_fish_failures_leave_no_files(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_fish(tmp_path / "missing", texture_size=64)
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        write_fish(a_file, texture_size=64)
    assert sorted(os.listdir(tmp_path)) == ["plain.txt"]

    # the final rename of the OBJ fails (disk full, permissions …): PNG/MTL written by this call are removed
    out = tmp_path / "out"
    out.mkdir()
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith(".obj"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(cache_mod.os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space"):
        write_fish(out, texture_size=64)
    assert os.listdir(out) == []


def test_fish_paths_generates_once(tmp_cache):
    obj, png = fish_paths(texture_size=64)
    assert obj.is_file() and png.is_file() and obj.parent.parent == tmp_cache
    mtime = obj.stat().st_mtime_ns
    assert fish_paths(texture_size=64) == (obj, png) and obj.stat().st_mtime_ns == mtime
    assert len(load_fish(obj, png).faces) == len(make_fish(64).faces)
