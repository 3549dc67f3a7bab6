"""MeshRenderer on the headless EGL context: pixel placement, filter behaviour under minification, caching."""
from __future__ import annotations

import gc
import math

import numpy as np
import pytest

from assets.textures import checkerboard, make_texture
from render.camera import Camera
from render.gl import GLUnavailable, gl_thread
from render.mesh import TexturedMesh
from render.mesh_renderer import FILTER_MODES, MeshRenderer

try:
    gl_thread()
except GLUnavailable as e:  # pragma: no cover - depends on the machine
    pytest.skip(f"no OpenGL: {e}", allow_module_level=True)

QUAD_UV = [[0, 0], [1, 0], [1, 1], [0, 1]]
QUAD_FACES = [[0, 1, 2], [0, 2, 3]]


@pytest.fixture(scope="module")
def renderer():
    r = MeshRenderer()
    yield r
    r.release()


def facing_camera_quad(cam: Camera, u0: float, v0: float, u1: float, v1: float, depth: float,
                       texture: np.ndarray) -> TexturedMesh:
    """A quad whose corners project exactly onto the pixel rectangle [u0,u1]x[v0,v1] (v = image rows)."""
    corners_px = np.array([[u0, v1], [u1, v1], [u1, v0], [u0, v0]], float)  # bottom-left first, CCW on screen
    pos = cam.unproject(corners_px, np.full(4, depth))
    normal = -cam.world_to_cam[2, :3]  # toward the camera
    return TexturedMesh(pos, np.tile(normal, (4, 1)), QUAD_UV, QUAD_FACES, texture)


def quadrant_texture(n: int = 8) -> np.ndarray:
    tex = np.zeros((n, n, 3), np.float32)
    h = n // 2
    tex[:h, :h] = (1, 0, 0)   # top-left: red
    tex[:h, h:] = (0, 1, 0)   # top-right: green
    tex[h:, :h] = (0, 0, 1)   # bottom-left: blue
    tex[h:, h:] = (1, 1, 1)   # bottom-right: white
    return tex


@pytest.fixture(scope="module")
def head_on():
    return Camera.look_at((0.3, -3.0, 0.2), (0.3, 0.0, 0.2), width=64, height=64)


def test_quad_lands_on_its_pixels_with_texture_upright(renderer, head_on):
    quad = facing_camera_quad(head_on, 16, 16, 48, 48, 3.0, quadrant_texture())
    uv, _ = head_on.project(quad.positions)
    np.testing.assert_allclose(np.sort(uv[:, 0]), [16, 16, 48, 48], atol=1e-6)
    img = renderer.render([quad], head_on, filter="nearest", lighting=False)
    assert img.shape == (64, 64, 4) and img.dtype == np.float32
    alpha = img[..., 3]
    assert np.all(alpha[16:48, 16:48] == 1.0)
    outside = np.ones_like(alpha, bool)
    outside[16:48, 16:48] = False
    assert np.all(alpha[outside] == 0.0) and np.all(img[outside] == 0.0)
    # row 0 is the top of the image and v = 0 is the bottom of the texture
    for rows, cols, colour in (((16, 32), (16, 32), (1, 0, 0)), ((16, 32), (32, 48), (0, 1, 0)),
                               ((32, 48), (16, 32), (0, 0, 1)), ((32, 48), (32, 48), (1, 1, 1))):
        block = img[rows[0] + 1:rows[1] - 1, cols[0] + 1:cols[1] - 1, :3]
        np.testing.assert_allclose(block, np.broadcast_to(colour, block.shape), atol=1e-6)


def test_silhouette_matches_camera_project_off_centre(renderer):
    """Principal point off-centre, non-square image, a model matrix: the GL path must agree with project()."""
    w2c = Camera.look_at((1.0, -2.5, 1.5), (0.0, 0.0, 0.0)).world_to_cam
    cam = Camera(fx=70.0, fy=75.0, cx=40.0, cy=22.0, width=96, height=64, world_to_cam=w2c)
    model = np.eye(4)
    c, s = math.cos(0.4), math.sin(0.4)
    model[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    model[:3, 3] = (0.1, 0.2, -0.1)
    local = np.array([[-0.4, 0, -0.3], [0.5, 0, -0.3], [0.5, 0, 0.35], [-0.4, 0, 0.35]], float)
    quad = TexturedMesh(local, np.tile([0, -1, 0], (4, 1)), QUAD_UV, QUAD_FACES, quadrant_texture(), model=model)
    world = local @ model[:3, :3].T + model[:3, 3]
    uv, z = cam.project(world)
    assert np.all(z > 0)
    alpha = renderer.render([quad], cam, filter="bilinear")[..., 3]
    rows, cols = np.nonzero(alpha > 0.5)
    assert abs(cols.min() - uv[:, 0].min()) <= 1.0 and abs(cols.max() + 1 - uv[:, 0].max()) <= 1.0
    assert abs(rows.min() - uv[:, 1].min()) <= 1.0 and abs(rows.max() + 1 - uv[:, 1].max()) <= 1.0


@pytest.fixture(scope="module")
def minified_checker(renderer, head_on):
    """A 256² checkerboard (3.01-texel cells) on 32x32 pixels: 8× minification, every filter mode."""
    quad = facing_camera_quad(head_on, 16, 16, 48, 48, 3.0, checkerboard(256, cells=85))
    return {name: renderer.render([quad], head_on, filter=name, lighting=False)[16:48, 16:48]
            for name in FILTER_MODES}


def test_supersampled_reference_averages_fine_checker_to_grey(minified_checker):
    ref = minified_checker["supersampled"]
    assert abs(ref[..., :3].mean() - 0.5) < 0.05 and ref[..., :3].std() < 0.05
    assert np.all(ref[..., 3] == 1.0)  # box-averaging the 4x frame keeps full coverage inside the quad


def test_nearest_aliases_where_the_reference_does_not(minified_checker):
    nearest = minified_checker["nearest"][..., :3]
    assert nearest.std() > 0.3  # full-contrast noise instead of grey


def test_trilinear_is_closer_to_reference_than_nearest(minified_checker):
    ref = minified_checker["supersampled"][..., :3]

    def mse(name):
        return float(((minified_checker[name][..., :3] - ref) ** 2).mean())

    assert mse("trilinear") < 0.1 * mse("nearest")
    assert mse("trilinear") < mse("bilinear")


def test_anisotropic_beats_trilinear_at_grazing_angle(renderer):
    """A textured floor seen at a grazing angle: mipmaps alone blur, anisotropic sampling tracks the reference."""
    floor = TexturedMesh(np.array([[-4, -1, 0], [4, -1, 0], [4, 15, 0], [-4, 15, 0]], float),
                         np.tile([0, 0, 1], (4, 1)), np.array([[0, 0], [4, 0], [4, 8], [0, 8]], float),
                         QUAD_FACES, make_texture("fish_scales", 128))
    cam = Camera.look_at((0, -2, 0.6), (0, 4, 0), width=96, height=96, fov_x=math.radians(60))
    imgs = {f: renderer.render([floor], cam, filter=f, lighting=False)[..., :3]
            for f in ("trilinear", "anisotropic", "supersampled")}
    err = {f: float(((imgs[f] - imgs["supersampled"]) ** 2).mean()) for f in ("trilinear", "anisotropic")}
    assert err["anisotropic"] < 0.7 * err["trilinear"], err


def test_rendering_is_deterministic_and_cached(renderer, head_on):
    quad = facing_camera_quad(head_on, 8, 8, 56, 56, 2.0, make_texture("zone_plate", 128))
    uploads0 = renderer.uploads
    a = renderer.render([quad], head_on, filter="trilinear")
    after_first = renderer.uploads
    assert after_first == uploads0 + 2  # geometry + texture
    b = renderer.render([quad], head_on, filter="trilinear")
    assert np.array_equal(a, b) and renderer.uploads == after_first
    s1 = renderer.render([quad], head_on, filter="supersampled")
    s2 = renderer.render([quad], head_on, filter="supersampled")
    assert np.array_equal(s1, s2) and renderer.uploads == after_first
    quad.texture = make_texture("checkerboard", 128)  # a new texture array: only the texture is re-uploaded
    renderer.render([quad], head_on)
    assert renderer.uploads == after_first + 1


def test_dropped_meshes_free_their_gl_objects(renderer, head_on):
    gc.collect()
    renderer.render([], head_on)
    base = renderer.cached_meshes
    gl_objects = renderer.gpu_entries
    quad = facing_camera_quad(head_on, 8, 8, 24, 24, 2.0, quadrant_texture())
    renderer.render([quad], head_on)
    assert renderer.cached_meshes == base + 1
    renderer.forget(quad)
    assert renderer.cached_meshes == base
    renderer.render([quad], head_on)
    del quad
    gc.collect()
    assert renderer.cached_meshes == base
    renderer.render([], head_on)  # GL objects are freed on the GL thread at the next render
    assert renderer.gpu_entries == gl_objects


def test_headlight_shading_closed_form_and_two_sided(renderer, head_on):
    tex = np.full((4, 4, 3), 0.8, np.float32)
    quad = facing_camera_quad(head_on, 16, 16, 48, 48, 3.0, tex)
    flat = renderer.render([quad], head_on, lighting=False)[32, 32, :3]
    lit = renderer.render([quad], head_on, lighting=True)[32, 32, :3]
    np.testing.assert_allclose(flat, 0.8, atol=1 / 255)
    # light in eye space is (-0.3, 0.4, 0.866)/|.|; this quad's normal is the eye-space +z axis
    expected = 0.8 * (0.35 + 0.65 * 0.866 / math.sqrt(0.3 ** 2 + 0.4 ** 2 + 0.866 ** 2))
    np.testing.assert_allclose(lit, expected, atol=2 / 255)
    back = TexturedMesh(quad.positions, -quad.normals, quad.uvs, quad.faces[:, ::-1], tex)  # seen from behind
    np.testing.assert_allclose(renderer.render([back], head_on)[32, 32, :3], expected, atol=2 / 255)


def test_background_is_composited_over(renderer, head_on):
    quad = facing_camera_quad(head_on, 16, 16, 48, 48, 3.0, quadrant_texture())
    img = renderer.render([quad], head_on, filter="nearest", lighting=False, background=(0.2, 0.4, 0.6, 1.0))
    np.testing.assert_allclose(img[0, 0], (0.2, 0.4, 0.6, 1.0), atol=1e-6)
    np.testing.assert_allclose(img[20, 20], (1, 0, 0, 1), atol=1e-6)


def test_bad_arguments_are_one_line_errors(renderer, head_on):
    with pytest.raises(ValueError, match="supersampled"):
        renderer.render([], head_on, filter="lanczos")
    with pytest.raises(ValueError, match="background"):
        renderer.render([], head_on, background=(0, 0, 0))


def test_fish_renders_at_image_centre():
    from assets.fish import make_fish

    fish = make_fish(128)
    cam = Camera.look_at((0.0, -4.0, 0.0), (0.0, 0.0, 0.0), width=96, height=96)
    r = MeshRenderer()
    try:
        img = r.render([fish], cam, filter="trilinear")
    finally:
        r.release()
    alpha = img[..., 3]
    assert alpha[44:52, 44:52].min() > 0.99       # the body covers the centre
    assert 0.05 < alpha.mean() < 0.6              # a fish, not an empty frame or a full-screen blob
    rows, cols = np.nonzero(alpha > 0.5)
    assert np.ptp(cols) > 1.5 * np.ptp(rows)      # seen from the side it is long along x
    assert img[44:52, 44:52, :3].std() > 0.02     # textured, not flat
