"""Closed-form and round-trip checks of the shared pinhole camera conventions."""
import math

import numpy as np
import pytest

from render.camera import Camera, look_at_world_to_cam, opencv_w2c_to_opengl_c2w, opengl_c2w_to_opencv_w2c


def _off_centre_camera() -> Camera:
    """A camera with a non-trivial pose and principal point, so sign or transpose mistakes cannot cancel."""
    w2c = look_at_world_to_cam([1.5, -2.0, 0.7], [0.1, 0.2, -0.1])
    return Camera(fx=210.0, fy=190.0, cx=70.0, cy=41.0, width=160, height=96, world_to_cam=w2c, near=0.05, far=20.0)


def _points_in_front(cam: Camera, n: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pc = np.column_stack([rng.uniform(-1, 1, n), rng.uniform(-1, 1, n), rng.uniform(0.5, 5.0, n)])
    c2w = cam.cam_to_world
    return pc @ c2w[:3, :3].T + c2w[:3, 3]


def test_identity_pose_projects_closed_form():
    cam = Camera(fx=100.0, fy=120.0, cx=64.0, cy=32.0, width=128, height=64, world_to_cam=np.eye(4))
    uv, z = cam.project(np.array([[0.0, 0.0, 3.0], [1.5, 0.0, 3.0], [0.0, -0.6, 2.0]]))
    np.testing.assert_allclose(uv[0], [64.0, 32.0])  # optical axis -> principal point
    np.testing.assert_allclose(uv[1], [64.0 + 0.5 * 100.0, 32.0])  # x = 0.5 z
    np.testing.assert_allclose(uv[2], [64.0, 32.0 - 0.3 * 120.0])  # y = -0.3 z (OpenCV y is down)
    np.testing.assert_allclose(z, [3.0, 3.0, 2.0])


def test_from_fov_focal_and_fov_round_trip():
    cam = Camera.from_fov(math.radians(60), 200, 100, np.eye(4))
    assert cam.fx == pytest.approx(100.0 / math.tan(math.radians(30)))
    assert cam.fov_x == pytest.approx(math.radians(60))
    assert (cam.cx, cam.cy) == (100.0, 50.0)


def test_project_unproject_round_trip():
    cam = _off_centre_camera()
    pts = _points_in_front(cam)
    uv, z = cam.project(pts)
    assert np.all(z > 0)
    np.testing.assert_allclose(cam.unproject(uv, z), pts, atol=1e-10)
    rng = np.random.default_rng(1)
    uv2 = rng.uniform([0, 0], [cam.width, cam.height], (20, 2))
    d2 = rng.uniform(0.2, 4.0, 20)
    uv_back, z_back = cam.project(cam.unproject(uv2, d2))
    np.testing.assert_allclose(uv_back, uv2, atol=1e-9)
    np.testing.assert_allclose(z_back, d2, atol=1e-12)


def test_look_at_pose():
    eye, target = np.array([3.0, -1.0, 2.0]), np.array([0.5, 0.5, 0.0])
    cam = Camera.look_at(eye, target, width=64, height=48)
    R = cam.world_to_cam[:3, :3]
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(cam.position, eye, atol=1e-12)
    uv, z = cam.project(np.array([target, target + [0, 0, 0.1]]))
    np.testing.assert_allclose(uv[0], [32.0, 24.0], atol=1e-9)
    assert z[0] == pytest.approx(np.linalg.norm(target - eye))
    assert uv[1, 1] < 24.0  # world up (+z) appears up in the image


def test_look_at_along_up_is_still_a_rotation():
    m = look_at_world_to_cam([0.0, 0.0, 5.0], [0.0, 0.0, 0.0])
    R = m[:3, :3]
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(R[2], [0.0, 0.0, -1.0], atol=1e-12)


def test_look_at_degenerate_raises():
    with pytest.raises(ValueError):
        look_at_world_to_cam([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])


def test_opengl_c2w_round_trip():
    cam = _off_centre_camera()
    c2w_gl = opencv_w2c_to_opengl_c2w(cam.world_to_cam)
    np.testing.assert_allclose(c2w_gl, cam.c2w_opengl(), atol=1e-12)
    np.testing.assert_allclose(opengl_c2w_to_opencv_w2c(c2w_gl), cam.world_to_cam, atol=1e-12)
    np.testing.assert_allclose(opengl_c2w_to_opencv_w2c(c2w_gl[:3]), cam.world_to_cam, atol=1e-12)  # 3x4 form
    # The GL view matrix is the inverse of the GL camera-to-world.
    np.testing.assert_allclose(cam.view_matrix_gl() @ c2w_gl, np.eye(4), atol=1e-12)
    # OpenGL camera looks along its -z column.
    fwd_cv = cam.cam_to_world[:3, 2]
    np.testing.assert_allclose(-c2w_gl[:3, 2], fwd_cv, atol=1e-12)


def test_nerf_synthetic_style_c2w_sees_origin_at_centre():
    # Blender camera at +4y looking at the origin, z up: columns are camera x, y (up), z (backward), position.
    c2w = np.array([
        [-1.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 4.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ])
    cam = Camera.from_c2w_opengl(c2w, math.radians(40), 100, 80)
    uv, z = cam.project(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.5], [-0.5, 0.0, 0.0]]))
    np.testing.assert_allclose(uv[0], [50.0, 40.0], atol=1e-9)
    assert z[0] == pytest.approx(4.0)
    assert uv[1, 1] < 40.0 and uv[1, 0] == pytest.approx(50.0)  # +z is image-up
    assert uv[2, 0] > 50.0 and uv[2, 1] == pytest.approx(40.0)  # seen from +y, world -x is image-right
    np.testing.assert_allclose(cam.c2w_opengl(), c2w, atol=1e-12)


def _gl_pixels(cam: Camera, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ph = np.column_stack([pts, np.ones(len(pts))])
    clip = ph @ (cam.projection_matrix_gl() @ cam.view_matrix_gl()).T
    ndc = clip[:, :3] / clip[:, 3:4]
    uv = np.column_stack([(ndc[:, 0] + 1) / 2 * cam.width, (1 - ndc[:, 1]) / 2 * cam.height])
    return uv, ndc[:, 2]


def test_projection_matrix_gl_matches_project_off_centre():
    cam = _off_centre_camera()
    pts = _points_in_front(cam, seed=3)
    uv_gl, _ = _gl_pixels(cam, pts)
    uv, _ = cam.project(pts)
    np.testing.assert_allclose(uv_gl, uv, atol=1e-9)


def test_projection_matrix_gl_depth_range():
    cam = _off_centre_camera()
    c2w = cam.cam_to_world
    pts = np.array([c2w[:3, 3] + c2w[:3, 2] * d for d in (cam.near, cam.far)])
    _, ndc_z = _gl_pixels(cam, pts)
    np.testing.assert_allclose(ndc_z, [-1.0, 1.0], atol=1e-9)


def test_zoomed_doubles_offsets_from_principal_point():
    cam = _off_centre_camera()
    pts = _points_in_front(cam, seed=4)
    uv1, _ = cam.project(pts)
    z2 = cam.zoomed(2.0)
    uv2, _ = z2.project(pts)
    c = np.array([cam.cx, cam.cy])
    np.testing.assert_allclose(uv2 - c, 2.0 * (uv1 - c), atol=1e-9)
    assert (z2.width, z2.height) == (cam.width, cam.height)
    assert z2.fov_x < cam.fov_x


def test_scaled_doubles_resolution_keeps_fov():
    cam = _off_centre_camera()
    s2 = cam.scaled(2.0)
    assert (s2.width, s2.height) == (2 * cam.width, 2 * cam.height)
    assert s2.fov_x == pytest.approx(cam.fov_x) and s2.fov_y == pytest.approx(cam.fov_y)
    pts = _points_in_front(cam, seed=5)
    np.testing.assert_allclose(s2.project(pts)[0], 2.0 * cam.project(pts)[0], atol=1e-9)


def test_pixel_rays_hit_their_pixel_centres():
    cam = _off_centre_camera()
    o, d = cam.pixel_rays()
    assert o.shape == d.shape == (cam.height, cam.width, 3)
    np.testing.assert_allclose(np.linalg.norm(d, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(o, np.broadcast_to(cam.position, o.shape), atol=1e-12)
    rows, cols = np.array([0, 5, 40, cam.height - 1]), np.array([0, 77, 3, cam.width - 1])
    pts = o[rows, cols] + 2.5 * d[rows, cols]
    uv, z = cam.project(pts)
    np.testing.assert_allclose(uv, np.column_stack([cols + 0.5, rows + 0.5]), atol=1e-9)
    assert np.all(z > 0)


@pytest.mark.parametrize("bad", [
    dict(world_to_cam=np.full((4, 4), np.nan)),
    dict(world_to_cam=np.eye(3)),
    dict(width=0),
    dict(height=-4),
    dict(fx=0.0),
    dict(fy=float("nan")),
])
def test_invalid_camera_raises(bad):
    args = dict(fx=100.0, fy=100.0, cx=32.0, cy=32.0, width=64, height=64, world_to_cam=np.eye(4))
    args.update(bad)
    with pytest.raises(ValueError):
        Camera(**args)


@pytest.mark.parametrize("factor", [0.0, -1.0, float("nan")])
def test_non_positive_zoom_or_scale_raises(factor):
    cam = Camera.from_fov(1.0, 32, 32, np.eye(4))
    with pytest.raises(ValueError):
        cam.zoomed(factor)
    with pytest.raises(ValueError):
        cam.scaled(factor)


def test_camera_is_immutable():
    cam = Camera.from_fov(1.0, 32, 32, np.eye(4))
    with pytest.raises(ValueError):
        cam.world_to_cam[0, 0] = 2.0


def test_camera_equality_and_hash_by_value():
    a = Camera.from_fov(1.0, 32, 32, np.eye(4))
    m = np.eye(4)
    m[0, 1] = m[2, 3] = -0.0  # equal to 0.0, different bytes
    b = Camera.from_fov(1.0, 32, 32, m)
    assert a == b and hash(a) == hash(b)
    assert a != a.zoomed(2.0)
    assert a != a.with_pose(look_at_world_to_cam([0.0, -1.0, 0.0], [0.0, 0.0, 0.0]))
    assert len({a, b, a.scaled(2.0)}) == 2
