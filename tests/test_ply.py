"""3DGS PLY I/O: reference layout (written independently with plyfile), bit-exact round trips, one-line errors."""
from __future__ import annotations

import numpy as np
import plyfile
import pytest
import torch

from methods.gaussians import GaussianModel, PlyError, load_ply, save_ply
from methods.gaussians.ply import ply_property_names

REF_BASE = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
REF_TAIL = ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]


def _random_model(n: int = 50, degree: int = 3, seed: int = 0, filter_3d: bool = True) -> GaussianModel:
    g = torch.Generator().manual_seed(seed)
    k = (degree + 1) ** 2
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    means = r(n, 3)
    means[0, 0] = -0.0  # signed zero must survive the round trip too
    return GaussianModel(means, r(n, 4), r(n, 3) - 3.0, r(n), r(n, 1, 3), r(n, k - 1, 3), max_sh_degree=degree,
                         filter_3d=torch.rand(n, generator=g) * 0.01 if filter_3d else None)


def _reference_props(n_rest: int, extra: tuple[str, ...] = ()) -> list[str]:
    return REF_BASE + [f"f_rest_{i}" for i in range(n_rest)] + REF_TAIL + list(extra)


def _write_plyfile(path, columns: dict[str, np.ndarray], dtype: str = "<f4", text: bool = False,
                   byte_order: str = "<", element: str = "vertex") -> None:
    """A PLY written by plyfile itself, independently of save_ply."""
    n = len(next(iter(columns.values())))
    arr = np.empty(n, dtype=[(k, dtype) for k in columns])
    for k, v in columns.items():
        arr[k] = v
    plyfile.PlyData([plyfile.PlyElement.describe(arr, element)], text=text, byte_order=byte_order).write(str(path))


def _reference_columns(n: int, n_rest: int) -> dict[str, np.ndarray]:
    """Known values: every property of vertex i encodes its name and i, so any mix-up shows."""
    i = np.arange(n, dtype=np.float32)
    cols: dict[str, np.ndarray] = {}
    for j, name in enumerate(_reference_props(n_rest)):
        cols[name] = (i * 1000.0 + j).astype(np.float32) / 64.0  # exact in float32
    cols["nx"] = np.full(n, 7.0, np.float32)  # normals are ignored on load
    return cols


def _err(path, **kw) -> str:
    with pytest.raises(PlyError) as ei:
        load_ply(path, **kw)
    msg = str(ei.value)
    assert isinstance(ei.value, ValueError)
    assert msg and "\n" not in msg and msg == msg.strip()
    assert str(path.name) in msg
    return msg


# ----- layout ---------------------------------------------------------------------------------------------------
def test_reference_layout_loads_to_expected_tensors(tmp_path):
    n, n_rest = 5, 45
    cols = _reference_columns(n, n_rest)
    cols_with_extra = {**cols, "some_other_tool_field": np.ones(n, np.float32)}  # unknown properties are ignored
    path = tmp_path / "ref.ply"
    _write_plyfile(path, cols_with_extra)
    m = load_ply(path)
    assert m.num_gaussians == n and m.max_sh_degree == 3 and m.active_sh_degree == 3 and m.filter_3d is None
    t = lambda name: torch.from_numpy(cols[name])  # noqa: E731
    assert torch.equal(m.means, torch.stack([t("x"), t("y"), t("z")], 1))
    assert torch.equal(m.logit_opacities, t("opacity"))
    assert torch.equal(m.log_scales, torch.stack([t(f"scale_{i}") for i in range(3)], 1))
    assert torch.equal(m.quats, torch.stack([t(f"rot_{i}") for i in range(4)], 1))  # rot_0 is w, stored raw
    assert torch.equal(m.sh_dc[:, 0, :], torch.stack([t(f"f_dc_{c}") for c in range(3)], 1))
    assert m.sh_rest.shape == (n, 15, 3)
    for c in range(3):            # channel-major: f_rest_{15c + k} is channel c, coefficient k+1
        for k in range(15):
            assert torch.equal(m.sh_rest[:, k, c], t(f"f_rest_{15 * c + k}")), (c, k)


def test_writer_matches_reference_layout(tmp_path):
    m = _random_model(7, filter_3d=False)
    path = save_ply(m, tmp_path / "out.ply")
    ply = plyfile.PlyData.read(str(path))
    assert [e.name for e in ply.elements] == ["vertex"]
    v = ply["vertex"]
    assert [p.name for p in v.properties] == _reference_props(45) and len(v.properties) == 62
    assert all(v.data.dtype[p] == np.dtype("<f4") for p in v.data.dtype.names)
    assert b"format binary_little_endian 1.0" in path.read_bytes()[:100]
    np.testing.assert_array_equal(v["nx"], 0.0)
    np.testing.assert_array_equal(v["f_rest_16"], m.sh_rest[:, 1, 1].detach().numpy())  # G, coefficient 2
    np.testing.assert_array_equal(v["f_rest_44"], m.sh_rest[:, 14, 2].detach().numpy())
    np.testing.assert_array_equal(v["rot_0"], m.quats[:, 0].detach().numpy())


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_sh_degree_detected_from_f_rest_count(tmp_path, degree):
    n_rest = 3 * ((degree + 1) ** 2 - 1)
    assert n_rest == [0, 9, 24, 45][degree]
    path = tmp_path / f"deg{degree}.ply"
    _write_plyfile(path, _reference_columns(4, n_rest))
    m = load_ply(path)
    assert m.max_sh_degree == degree and m.sh_rest.shape == (4, (degree + 1) ** 2 - 1, 3)
    assert m.sh().shape == (4, (degree + 1) ** 2, 3)
    # and our writer writes the same count back
    out = save_ply(m, tmp_path / f"deg{degree}_out.ply")
    names = [p.name for p in plyfile.PlyData.read(str(out))["vertex"].properties]
    assert names == ply_property_names(degree) and sum(nm.startswith("f_rest_") for nm in names) == n_rest


# ----- round trips ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("degree,filt", [(3, True), (3, False), (1, True), (0, False)])
def test_round_trip_is_bit_exact(tmp_path, degree, filt):
    m = _random_model(64, degree, seed=degree, filter_3d=filt)
    a = save_ply(m, tmp_path / "a.ply")
    m2 = load_ply(a)
    b = save_ply(m2, tmp_path / "b.ply")
    assert a.read_bytes() == b.read_bytes()
    for name, p in m.params().items():
        assert torch.equal(getattr(m2, name), p.detach()), name
    assert torch.signbit(m2.means[0, 0])  # -0.0 kept
    if filt:
        assert torch.equal(m2.filter_3d, m.filter_3d)
        assert [p.name for p in plyfile.PlyData.read(str(a))["vertex"].properties][-1] == "filter_3D"
    else:
        assert m2.filter_3d is None
    n_props = len(ply_property_names(degree, with_filter_3d=filt))
    header_len = a.read_bytes().index(b"end_header\n") + len(b"end_header\n")
    assert a.stat().st_size == header_len + 64 * n_props * 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_ascii_big_endian_and_float64_are_converted(tmp_path):
    cols = _reference_columns(6, 9)
    _write_plyfile(tmp_path / "bin.ply", cols)
    _write_plyfile(tmp_path / "ascii.ply", cols, text=True)
    _write_plyfile(tmp_path / "be64.ply", cols, dtype=">f8", byte_order=">")
    assert (tmp_path / "ascii.ply").read_bytes().startswith(b"ply\nformat ascii 1.0")
    ref = load_ply(tmp_path / "bin.ply")
    for other in ("ascii.ply", "be64.ply"):
        m = load_ply(tmp_path / other)
        assert m.means.dtype == torch.float32
        for name, p in ref.params().items():
            assert torch.equal(getattr(m, name), p), (other, name)
    # saving always produces the canonical binary float32 file
    assert save_ply(load_ply(tmp_path / "ascii.ply"), tmp_path / "c1.ply").read_bytes() == \
        save_ply(ref, tmp_path / "c2.ply").read_bytes()


def test_filter_3d_property_is_read(tmp_path):
    cols = _reference_columns(3, 0)
    cols["filter_3D"] = np.array([0.5, 0.25, 0.125], np.float32)
    _write_plyfile(tmp_path / "mip.ply", cols)
    m = load_ply(tmp_path / "mip.ply")
    assert torch.equal(m.filter_3d, torch.tensor([0.5, 0.25, 0.125]))


# ----- baking ---------------------------------------------------------------------------------------------------
def test_bake_3d_filter_matches_filtered_model(tmp_path):
    m = _random_model(200, seed=3)
    with torch.no_grad():
        m.filter_3d = torch.linspace(0.0, 0.2, 200)  # from no effect to dominating the scale
    path = save_ply(m, tmp_path / "baked.ply", bake_3d_filter=True)
    names = [p.name for p in plyfile.PlyData.read(str(path))["vertex"].properties]
    assert names == ply_property_names(3) and len(names) == 62  # a standard file: no filter_3D
    baked = load_ply(path)
    assert baked.filter_3d is None
    s_ref, o_ref = m.effective(use_3d_filter=True)
    s_b, o_b = baked.effective(use_3d_filter=False)
    torch.testing.assert_close(s_b, s_ref.detach(), rtol=1e-6, atol=0)
    torch.testing.assert_close(o_b, o_ref.detach(), rtol=2e-6, atol=1e-12)
    # and the filter really changed something (so the comparison above is not vacuous)
    assert (o_ref < m.opacities * 0.5).any() and (s_ref > m.scales * 1.5).any()
    for name in ("means", "quats", "sh_dc", "sh_rest"):
        assert torch.equal(getattr(baked, name), getattr(m, name).detach())


def test_bake_without_filter_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no.*filter|has none"):
        save_ply(_random_model(3, filter_3d=False), tmp_path / "x.ply", bake_3d_filter=True)
    assert not (tmp_path / "x.ply").exists()


def test_bake_renders_like_filtered_model(tmp_path):
    splat = pytest.importorskip("render.splat")
    if not hasattr(splat, "rasterize_camera"):
        pytest.skip("render.splat.rasterize_camera not available yet")
    from methods.gaussians.demo import demo_cameras, demo_model

    m = demo_model()
    with torch.no_grad():
        m.filter_3d = m.filter_3d * 8.0  # strong enough to matter at this resolution
    baked = load_ply(save_ply(m, tmp_path / "baked.ply", bake_3d_filter=True))
    cam = demo_cameras(4, 64)[0]
    with torch.no_grad():
        a = m.render(cam, use_3d_filter=True).color
        b = baked.render(cam, use_3d_filter=False).color
        c = m.render(cam, use_3d_filter=False).color
    assert float((a - b).abs().max()) < 1e-4
    assert float((a - c).abs().max()) > 1e-3


# ----- malformed files ------------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    assert "not found" in _err(tmp_path / "nope.ply")


def test_not_a_ply(tmp_path):
    p = tmp_path / "image.ply"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert "not a PLY" in _err(p)
    p2 = tmp_path / "empty.ply"
    p2.write_bytes(b"")
    assert "not a PLY" in _err(p2)


def test_malformed_header(tmp_path):
    p = tmp_path / "hdr.ply"
    p.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex lots\nproperty float x\nend_header\n")
    assert "header" in _err(p)


def test_no_vertex_element(tmp_path):
    p = tmp_path / "points.ply"
    _write_plyfile(p, _reference_columns(3, 45), element="point")
    msg = _err(p)
    assert "no 'vertex' element" in msg and "point" in msg


def test_missing_required_properties_are_named(tmp_path):
    cols = _reference_columns(3, 45)
    for k in ("opacity", "rot_3", "scale_1", "scale_2"):
        del cols[k]
    p = tmp_path / "missing.ply"
    _write_plyfile(p, cols)
    msg = _err(p)
    assert "missing required properties" in msg
    assert "opacity" in msg and "rot_3" in msg and "scale_1..2" in msg and "x," not in msg


def test_point_cloud_gets_a_hint(tmp_path):
    p = tmp_path / "sfm.ply"
    xyz = {k: np.zeros(4, np.float32) for k in ("x", "y", "z")}
    _write_plyfile(p, {**xyz, "red": np.zeros(4), "green": np.zeros(4), "blue": np.zeros(4)})
    msg = _err(p)
    assert "f_dc_0..2" in msg and "point cloud" in msg


@pytest.mark.parametrize("n_rest", [10, 44, 3])
def test_wrong_f_rest_count(tmp_path, n_rest):
    p = tmp_path / "rest.ply"
    _write_plyfile(p, _reference_columns(3, n_rest))
    msg = _err(p)
    assert f"{n_rest} f_rest" in msg and "0, 9, 24 or 45" in msg


def test_f_rest_numbering_gap(tmp_path):
    cols = _reference_columns(3, 9)
    cols["f_rest_12"] = cols.pop("f_rest_4")
    p = tmp_path / "gap.ply"
    _write_plyfile(p, cols)
    msg = _err(p)
    assert "f_rest_4" in msg


def test_nan_and_inf_are_counted(tmp_path):
    cols = _reference_columns(5, 0)
    cols["x"][1] = np.nan
    cols["opacity"][[0, 3]] = [np.inf, -np.inf]
    cols["nx"][2] = np.nan  # normals are unused: not counted
    p = tmp_path / "nan.ply"
    _write_plyfile(p, cols)
    msg = _err(p, nonfinite="error")
    assert "3 NaN/Inf" in msg and "x" in msg and "opacity" in msg and "nx" not in msg
    model = load_ply(p)  # the default drops the bad Gaussians (rows 0, 1, 3) and says so in one line
    assert model.num_gaussians == 2
    ref = _reference_columns(5, 0)
    np.testing.assert_array_equal(model.means[:, 1].detach().numpy(), ref["y"][[2, 4]])
    assert "dropped 3 of 5 Gaussians" in model.load_note and "x, opacity" in model.load_note
    assert "\n" not in model.load_note and p.name in model.load_note


def test_a_model_whose_every_gaussian_is_nan_is_refused(tmp_path):
    cols = _reference_columns(3, 0)
    cols["scale_1"][:] = np.nan
    p = tmp_path / "all_nan.ply"
    _write_plyfile(p, cols)
    msg = _err(p)
    assert "all 3 Gaussians" in msg and "scale_1" in msg


def test_a_clean_model_has_an_empty_load_note(tmp_path):
    assert load_ply(save_ply(_random_model(5), tmp_path / "ok.ply")).load_note == ""


def test_truncated_data(tmp_path):
    good = save_ply(_random_model(20), tmp_path / "good.ply")
    p = tmp_path / "cut.ply"
    p.write_bytes(good.read_bytes()[:-100])
    assert "truncated" in _err(p)


def test_zero_vertices(tmp_path):
    p = tmp_path / "zero.ply"
    _write_plyfile(p, {k: np.zeros(0, np.float32) for k in _reference_props(45)})
    assert "0 vertices" in _err(p)


def test_plyerror_message_names_file_once(tmp_path):
    msg = _err(tmp_path / "what.ply")
    assert msg.startswith("what.ply: ")
    assert len(msg) < 300


# ----- the fast loader ------------------------------------------------------------------------------------------
def _plyfile_vertex(path) -> np.ndarray:
    return plyfile.PlyData.read(str(path), mmap=False)["vertex"].data


@pytest.mark.parametrize("variant", ["le-f4-deg0", "le-f4-deg1", "le-f4-deg2", "le-f4-deg3", "le-f4-filter",
                                     "be-f8", "le-i2-u1-mixed", "comments-and-a-face-element"])
def test_fast_loader_reads_exactly_what_plyfile_reads(tmp_path, variant):
    from pathlib import Path

    from methods.gaussians.ply import _fast_vertex, _read_vertex

    path = Path(tmp_path / f"{variant}.ply")
    degree = int(variant[-1]) if variant.startswith("le-f4-deg") else 3
    cols = _reference_columns(7, 3 * ((degree + 1) ** 2 - 1))
    if variant == "le-f4-filter":
        cols["filter_3D"] = np.linspace(0, 1, 7, dtype=np.float32)
    if variant == "be-f8":
        _write_plyfile(path, cols, dtype=">f8", byte_order=">")
    elif variant == "le-i2-u1-mixed":  # per-property types: plyfile keeps each, and so must we
        n = 7
        arr = np.empty(n, dtype=[(k, "<i2" if k.startswith("f_rest") else ("u1" if k == "nx" else "<f4"))
                                 for k in cols])
        for k, v in cols.items():
            arr[k] = v if arr.dtype[k].kind == "f" else np.arange(n)
        plyfile.PlyData([plyfile.PlyElement.describe(arr, "vertex")]).write(str(path))
    elif variant == "comments-and-a-face-element":
        arr = np.empty(7, dtype=[(k, "<f4") for k in cols])
        for k, v in cols.items():
            arr[k] = v
        faces = np.array([([0, 1, 2],)], dtype=[("vertex_indices", "i4", (3,))])
        plyfile.PlyData([plyfile.PlyElement.describe(arr, "vertex"), plyfile.PlyElement.describe(faces, "face")],
                        comments=["made by a test", "end_header is not here"]).write(str(path))
    else:
        _write_plyfile(path, cols)
    fast = _fast_vertex(path)
    assert fast is not None  # binary files take the fast path
    ref = _plyfile_vertex(path)
    assert fast.dtype == ref.dtype and fast.shape == ref.shape
    for name in ref.dtype.names:
        assert fast[name].tobytes() == ref[name].tobytes(), name  # bit-identical, signed zeros and NaNs included
    assert _read_vertex(path) is not None


def test_fast_loader_leaves_other_files_to_the_general_reader(tmp_path):
    from methods.gaussians.ply import _fast_vertex

    cols = _reference_columns(5, 9)
    _write_plyfile(tmp_path / "ascii.ply", cols, text=True)
    assert _fast_vertex(tmp_path / "ascii.ply") is None
    arr = np.empty(5, dtype=[(k, "<f4") for k in cols])
    for k, v in cols.items():
        arr[k] = v
    other = np.zeros(2, dtype=[("a", "<f4")])
    plyfile.PlyData([plyfile.PlyElement.describe(other, "camera"), plyfile.PlyElement.describe(arr, "vertex")]
                    ).write(str(tmp_path / "second.ply"))
    assert _fast_vertex(tmp_path / "second.ply") is None  # vertex not first: plyfile finds it
    m1, m2 = load_ply(tmp_path / "ascii.ply"), load_ply(tmp_path / "second.ply")
    torch.testing.assert_close(m1.means, m2.means, rtol=0, atol=0)


def test_fast_loader_is_the_round_trip_path_and_stays_bit_exact(tmp_path):
    from methods.gaussians.ply import _fast_vertex

    model = _random_model(40, 2, seed=5)
    path = save_ply(model, tmp_path / "a.ply")
    assert _fast_vertex(path) is not None
    assert save_ply(load_ply(path), tmp_path / "b.ply").read_bytes() == path.read_bytes()
