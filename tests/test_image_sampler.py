"""2D viewport sampling: exact at zoom 1, known aliasing at zoom < 1, and the prefilter as a Gaussian closed form."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from render.image_sampler import ImageOptions, ImageSource, gaussian_blur, sample_image
from render.live import RenderRequest
from render.options import make_options


def test_zoom_one_centre_zero_reproduces_the_image_exactly():
    rng = np.random.default_rng(0)
    img = rng.random((16, 24, 3)).astype(np.float32)
    for mode in ("nearest", "bilinear", "prefiltered"):
        out = sample_image(img, (0.0, 0.0), 1.0, 24, 16, mode)
        np.testing.assert_allclose(out, img, atol=1e-5)


def test_zoom_two_magnifies_each_pixel_into_a_2x2_block():
    img = np.random.default_rng(1).random((8, 8, 3)).astype(np.float32)
    out = sample_image(img, (0.0, 0.0), 2.0, 16, 16, "nearest")
    np.testing.assert_allclose(out[::2, ::2], img, atol=1e-6)
    np.testing.assert_allclose(out[1::2, 1::2], img, atol=1e-6)


def test_pan_shifts_by_the_expected_number_of_pixels():
    img = np.random.default_rng(2).random((16, 16, 3)).astype(np.float32)
    # centre moved by 4 source pixels to the right (centre is in image pixels from the image centre)
    out = sample_image(img, (4.0, 0.0), 1.0, 16, 16, "nearest")
    np.testing.assert_allclose(out[:, :12], img[:, 4:], atol=1e-6)


def test_minified_checkerboard_aliases_without_prefilter_and_averages_with_it():
    y, x = np.mgrid[0:256, 0:256]
    checker = (((x // 1) + (y // 1)) % 2).astype(np.float32)[..., None].repeat(3, 2)
    naive = sample_image(checker, (0.0, 0.0), 1 / 8, 32, 32, "nearest")
    pre = sample_image(checker, (0.0, 0.0), 1 / 8, 32, 32, "prefiltered")
    assert abs(naive.mean() - 0.5) > 0.4  # every 8th pixel has the same colour: aliased to solid black/white
    assert abs(pre.mean() - 0.5) < 0.02 and pre.std() < 0.02  # the prefilter averages to grey


def test_gaussian_blur_of_a_sinusoid_matches_the_closed_form_attenuation():
    n, k, sigma = 256, 8, 3.0  # k periods over n pixels
    x = np.arange(n)
    row = np.sin(2 * np.pi * k * x / n).astype(np.float32)
    img = torch.from_numpy(np.tile(row, (16, 1)))[None, None]
    out = gaussian_blur(img, sigma)[0, 0, 8].numpy()
    omega = 2 * np.pi * k / n
    expected = math.exp(-0.5 * (sigma * omega) ** 2)  # Fourier transform of a Gaussian
    inner = slice(32, n - 32)  # away from the padded borders
    amp = np.abs(out[inner]).max()
    assert amp == pytest.approx(expected, rel=0.01)


def test_image_source_rejects_bad_images_with_one_line():
    with pytest.raises(ValueError, match="finite HxWx"):
        ImageSource(np.full((4, 4, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match="shape"):
        ImageSource(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="mode: 'cubic' is not one of nearest, bilinear, prefiltered"):
        make_options(ImageOptions, mode="cubic")  # the options dataclass is where choices are checked
    with pytest.raises(TypeError, match="options dataclass"):
        RenderRequest(4, 4, options=(("mode", "cubic"),))
