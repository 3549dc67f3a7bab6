"""The UV G-buffer and a pixel's texture-space footprint: closed form on a fronto-parallel quad (interior and
silhouette pixels alike), the J·Jᵀ orientation, and bounded Jacobians across the fish's UV seams."""
from __future__ import annotations

import numpy as np
import pytest

from render.camera import Camera, look_at_world_to_cam
from render.uv_footprint import footprint_covariance, uv_jacobian, uv_to_field


@pytest.fixture(scope="module")
def renderer():
    from render.mesh_renderer import MeshRenderer

    return MeshRenderer()


def test_a_fronto_parallel_quad_has_the_closed_form_jacobian_everywhere_it_is_covered(renderer):
    """A quad of side s at distance d seen with focal f: one pixel spans d/(f·s) of the texture, so in field units
    of a W×H texture J = diag(2W/(W−1), 2H/(H−1)) · d/(f·s) — at interior *and* silhouette pixels (one-sided
    differences there), because background UVs never enter a difference."""
    from assets.primitives import plane

    s, d, f, W, H = 1.0, 3.0, 100.0, 64, 32
    tex = np.random.default_rng(0).random((H, W, 3)).astype(np.float32)
    quad = plane(s, texture=tex)  # z = 0, facing +z, u along +x, v along +y
    cam = Camera(f, f, 40.0, 30.0, 80, 60, look_at_world_to_cam((0.0, 0.0, d), (0.0, 0.0, 0.0), up=(0, 1, 0)))
    g = renderer.render_uv([quad], cam)
    assert 900 < g.mask.sum() < 1300  # (100·1/3)² ≈ 1111 pixels
    assert np.allclose(g.depth[g.mask], d, rtol=1e-3) and np.isinf(g.depth[~g.mask]).all()
    coords = uv_to_field(g.uv, (W, H))
    J = uv_jacobian(coords, g.mask)
    k = d / (f * s)
    expect = np.diag([2 * W / (W - 1) * k, 2 * H / (H - 1) * k])
    np.testing.assert_allclose(J[g.mask], np.broadcast_to(expect, (g.mask.sum(), 2, 2)), atol=1e-4)
    edge = g.mask & ~np.roll(g.mask, -1, axis=1)  # covered pixels whose right neighbour is background
    assert edge.sum() > 20
    np.testing.assert_allclose(J[edge], np.broadcast_to(expect, (edge.sum(), 2, 2)), atol=1e-4)
    cov = footprint_covariance(J, 1.0)[g.mask][0]
    np.testing.assert_allclose(cov, 0.25 * expect @ expect.T, rtol=1e-4)
    assert (J[~g.mask] == 0).all()


def test_the_covariance_is_j_jt_so_it_turns_with_the_texture():
    """A texture rotated 45° under the screen: J = R(45°)·diag(10, 1); J·Jᵀ has its major axis at 45° (the
    reference code's Jᵀ·J would be diag(100, 1), axis-aligned)."""
    c, s = np.cos(np.pi / 4), np.sin(np.pi / 4)
    J = np.array([[c, -s], [s, c]]) @ np.diag([10.0, 1.0])
    cov = footprint_covariance(J[None, None], 2.0)[0, 0]
    vals, vecs = np.linalg.eigh(cov)
    assert vals == pytest.approx([1.0, 100.0])
    assert abs(abs(vecs[0, 1]) - c) < 1e-9 and abs(abs(vecs[1, 1]) - s) < 1e-9


def test_uv_jacobian_picks_one_sided_differences_at_seams_and_silhouettes():
    coords = np.zeros((1, 6, 2))
    coords[0, :, 0] = [0.10, 0.11, 0.12, 0.93, 0.94, 0.95]  # a UV seam between pixels 2 and 3
    mask = np.array([[False, True, True, True, True, True]])
    J = uv_jacobian(coords, mask)
    np.testing.assert_allclose(J[0, 1:, 0, 0], [0.01, 0.01, 0.01, 0.01, 0.01], atol=1e-12)
    assert J[0, 0, 0, 0] == 0.0  # background


def test_fish_jacobians_stay_bounded_across_its_uv_seams_and_parts(renderer):
    """Without chart/seam handling a difference across the body's UV seam or from a fin onto the body is ~20-100×
    the typical footprint; with it those pixels get footprints like their neighbours'."""
    from scipy.ndimage import binary_erosion

    from assets.fish import make_fish
    from render.mesh_renderer import uv_charts
    from render.mesh_source import mesh_camera

    fish = make_fish(256)
    assert int(uv_charts(fish.faces, len(fish.positions)).max()) + 1 >= 4  # body, tail, two fins
    base = mesh_camera([fish], 320, 200)
    for turn in (0.0, np.pi):  # both sides
        rot = np.eye(4)
        rot[:2, :2] = [[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]]
        g = renderer.render_uv([fish], base.with_pose(base.world_to_cam @ rot))
        coords = uv_to_field(g.uv, (256, 256))
        ours = np.linalg.norm(uv_jacobian(coords, g.chart), axis=(2, 3))
        naive = np.linalg.norm(uv_jacobian(coords, g.mask, seam_ratio=1e30), axis=(2, 3))
        typical = np.median(ours[g.mask])
        inner = binary_erosion(g.mask, iterations=2)  # away from the silhouette, where grazing footprints are real
        crossing = inner & (naive > 20 * typical)
        assert crossing.sum() > 50, crossing.sum()
        assert np.median(ours[crossing]) < 3 * typical
        assert np.mean(ours[crossing] < 10 * typical) > 0.9
