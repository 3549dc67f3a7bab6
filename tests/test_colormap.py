import numpy as np

from render.colormap import colormap


def test_colormap_is_monotone_in_brightness_and_maps_the_ends():
    ramp = colormap(np.linspace(0, 1, 101)[None])[0]
    lum = ramp @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    assert np.all(np.diff(lum) > 0)
    np.testing.assert_allclose(ramp[0], [0.02, 0.02, 0.10], atol=1e-6)
    np.testing.assert_allclose(ramp[-1], [0.99, 0.98, 0.64], atol=1e-6)


def test_colormap_ranges_and_nan():
    v = np.array([[np.nan, 2.0, 4.0]])
    out = colormap(v)
    assert np.all(out[0, 0] == 0) and np.allclose(out[0, 1], colormap(np.array([[0.0]]))[0, 0])
    assert np.allclose(colormap(np.array([[5.0]]), lo=0, hi=10), colormap(np.array([[0.5]]), lo=0, hi=1))
