"""The one 2D viewport mapping: pixel centres at +0.5, inverse pairs, and every 2D consumer agreeing with it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from render.image_sampler import sample_image
from render.viewport import Viewport, from_field, to_field, to_grid


def test_zoom_one_centre_zero_maps_screen_pixel_centres_onto_image_pixel_centres():
    vp = Viewport((0.0, 0.0), 1.0, 10, 6, (10, 6))
    uv = vp.pixel_coords()
    assert uv.shape == (6, 10, 2)
    np.testing.assert_allclose(uv[..., 0], np.broadcast_to(np.arange(10)[None] + 0.5, (6, 10)))
    np.testing.assert_allclose(uv[..., 1], np.broadcast_to(np.arange(6)[:, None] + 0.5, (6, 10)))


@pytest.mark.parametrize("zoom", [0.125, 0.7, 1.0, 3.0])
def test_to_image_and_to_screen_are_inverse_and_zoom_scales_about_the_view_centre(zoom):
    vp = Viewport((3.5, -2.0), zoom, 64, 48, (100, 80))
    x, y = np.array([0.0, 31.7, 64.0]), np.array([0.0, 12.2, 48.0])
    u, v = vp.to_image(x, y)
    xb, yb = vp.to_screen(u, v)
    np.testing.assert_allclose(xb, x, atol=1e-9)
    np.testing.assert_allclose(yb, y, atol=1e-9)
    uc, vc = vp.to_image(32.0, 24.0)  # the screen centre looks at image centre + center
    assert (uc, vc) == pytest.approx((50 + 3.5, 40 - 2.0))
    u1, _ = vp.to_image(33.0, 24.0)
    assert u1 - uc == pytest.approx(1 / zoom)  # one screen pixel = 1/zoom image pixels


def test_field_units_put_plus_minus_one_on_the_border_pixel_centres():
    size = (9, 5)
    xy = to_field(np.array([[0.5, 0.5], [8.5, 4.5], [4.5, 2.5]]), size)
    np.testing.assert_allclose(xy, [[-1, -1], [1, 1], [0, 0]])
    np.testing.assert_allclose(from_field(xy, size), [[0.5, 0.5], [8.5, 4.5], [4.5, 2.5]])
    np.testing.assert_allclose(to_grid(np.array([[0.0, 0.0], [9.0, 5.0]]), size), [[-1, -1], [1, 1]])


def test_grid_sample_and_field_coordinates_read_the_same_image_pixel():
    """The image sampler (grid units) and the scale-space source (field units) are fed by the same mapping, so
    both see the same pixel at every screen position — the bug the two conventions used to allow."""
    rng = np.random.default_rng(0)
    img = rng.random((12, 16, 3)).astype(np.float32)
    vp = Viewport((2.0, -1.0), 2.0, 20, 14, (16, 12))
    via_grid = sample_image(img, vp.center, vp.zoom, vp.width, vp.height, "bilinear")
    pts = torch.from_numpy(to_field(vp.pixel_coords(), (16, 12)).astype(np.float32))[None]
    t = torch.from_numpy(img).permute(2, 0, 1)[None]
    via_field = torch.nn.functional.grid_sample(t, pts, mode="bilinear", align_corners=True)[0].permute(1, 2, 0)
    inside = (np.abs(pts[0].numpy()) <= 1).all(axis=-1)
    np.testing.assert_allclose(via_grid[inside], via_field.numpy()[inside], atol=1e-5)
