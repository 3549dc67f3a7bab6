"""The scale-space live source (covariances, viewport geometry, exact comparison) and the Scale-space view in the
real studio: the variance slider smooths the picture and anisotropic θ = 0 blurs along x more than along y."""
from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch

from methods.field import Field
from methods.live_training import SnapshotPublisher
from methods.ngssf.live_source import (ExactBlurField, ScaleSpaceOptions, ScaleSpaceSource, covariance,
                                       ellipse_outline, foveated_variances, pixel_footprint, viewport_points)
from methods.ngssf.train import inference_copy
from render.live import RenderRequest
from render.options import make_options

N = 64


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from assets.photos import load_photo

    return load_photo("astronaut", size=N)


def exact_field(image: np.ndarray) -> Field:
    """The stand-in "perfect" scale-space field: GridField (exact blur, bilinear) in the [-1, 1] value range."""
    try:
        from methods.ngssf.signals import GridField
    except ImportError:
        return ExactBlurField(image)
    return GridField(image * 2.0 - 1.0)


def req(w: int = N, h: int = N, zoom: float = 1.0, center=(0.0, 0.0), revision: int = 0, render_scale: float = 1.0,
        **opts) -> RenderRequest:
    """A request with ScaleSpaceOptions; every option not given is the dataclass default except the three that
    make a test's picture depend on what it names (antialias, ellipse, compare: off unless asked for)."""
    opts = {"antialias": False, "ellipse": False, "compare": False, **opts}
    return RenderRequest(width=w, height=h, zoom=zoom, center=center, revision=revision, render_scale=render_scale,
                         options=make_options(ScaleSpaceOptions, opts))


def laplacian_energy(img: np.ndarray) -> float:
    g = img.mean(axis=2) if img.ndim == 3 else img
    lap = g[1:-1, 2:] + g[1:-1, :-2] + g[2:, 1:-1] + g[:-2, 1:-1] - 4 * g[1:-1, 1:-1]
    return float((lap ** 2).mean())


def grad_energy(img: np.ndarray) -> tuple[float, float]:
    g = img.mean(axis=2) if img.ndim == 3 else img
    return float((np.diff(g, axis=1) ** 2).mean()), float((np.diff(g, axis=0) ** 2).mean())


# ----- covariances ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("var,ratio,angle", [(1e-3, 1.0, 0.0), (2e-3, 4.0, 0.0), (1e-4, 10.0, 30.0),
                                             (5e-2, 20.0, 135.0), (1e-3, 2.0, 90.0)])
def test_covariance_has_the_requested_axes_and_orientation(var, ratio, angle):
    c = covariance(var, ratio, angle)
    assert np.allclose(c, c.T)
    vals, vecs = np.linalg.eigh(c)
    assert vals == pytest.approx([var / ratio ** 2, var], rel=1e-9, abs=1e-15)
    if ratio > 1:
        major = vecs[:, 1]
        got = math.degrees(math.atan2(major[1], major[0])) % 180
        assert min(abs(got - angle % 180), 180 - abs(got - angle % 180)) < 1e-6
    with pytest.raises(ValueError):
        covariance(1e-3, 0.5, 0)


def test_foveated_variances_are_zero_in_the_fovea_and_grow_with_distance():
    fovea = (0.3, -0.2)
    d = np.linspace(0, 1.5, 60)
    pts = np.stack([fovea[0] + d * math.cos(0.7), fovea[1] + d * math.sin(0.7)], axis=1)
    v = foveated_variances(pts, fovea, 1e-2, radius=0.15)
    assert np.all(v[d <= 0.15] == 0)
    assert np.all(np.diff(v) >= 0) and v[-1] == pytest.approx(1e-2)
    assert np.all(np.diff(v[(d > 0.15) & (d < 1.0)]) > 0)


def test_antialias_adds_the_pixel_footprint_at_the_current_zoom(photo):
    src = ScaleSpaceSource(exact_field(photo), photo)
    base = covariance(1e-3, 3.0, 20.0)
    for zoom in (0.125, 0.5, 1.0, 4.0):
        r = req(zoom=zoom, mode="anisotropic", variance=1e-3, ratio=3.0, angle=20.0, antialias=True)
        fp = src.request_cov(r) - base
        sigma_field = 0.5 / zoom * 2 / (N - 1)  # half a screen pixel in training pixels, in field units
        assert np.allclose(fp, sigma_field ** 2 * np.eye(2))
        assert np.allclose(pixel_footprint(zoom, (N, N)), fp)
        assert np.allclose(src.request_cov(req(zoom=zoom, mode="anisotropic", variance=1e-3, ratio=3.0,
                                               angle=20.0)), base)
    # previews render fewer pixels over the same region: the footprint follows the real sampling rate
    r = req(w=N // 2, h=N // 2, zoom=1.0, mode="isotropic", variance=0.0, antialias=True, render_scale=0.5)
    assert np.allclose(src.request_cov(r), pixel_footprint(0.5, (N, N)))


def test_antialiased_zoom_out_has_less_aliasing_than_point_sampling():
    from assets.textures import make_texture

    img = make_texture("zone_plate", 128)
    src = ScaleSpaceSource(ExactBlurField(img), img)
    exact = ScaleSpaceSource(ExactBlurField(img), img)
    aliased = src.render(req(32, 32, zoom=0.25, mode="isotropic", variance=0.0)).image
    smooth = src.render(req(32, 32, zoom=0.25, mode="isotropic", variance=0.0, antialias=True)).image
    # the band-limited answer: an exact blur wide enough that nothing above the 32-pixel Nyquist rate is left
    ref = exact.render(req(32, 32, zoom=0.25, mode="isotropic", variance=(4.0 * 2 / 127) ** 2)).image
    assert np.abs(smooth - ref).mean() < 0.5 * np.abs(aliased - ref).mean()


# ----- geometry -------------------------------------------------------------------------------------------------
def test_zoom_one_shows_one_training_pixel_per_screen_pixel(photo):
    src = ScaleSpaceSource(exact_field(photo), photo)
    fr = src.render(req(mode="isotropic", variance=0.0))
    assert fr.image.shape == (N, N, 3)
    assert np.abs(fr.image - photo).max() < 1e-4
    pts = viewport_points((0.0, 0.0), 1.0, N, N, (N, N))
    assert pts[0, 0] == pytest.approx([-1, -1]) and pts[-1, -1] == pytest.approx([1, 1])
    # panning by one image pixel shifts the picture by one pixel
    shifted = src.render(req(mode="isotropic", variance=0.0, center=(1.0, 0.0))).image
    assert np.abs(shifted[:, :-1] - photo[:, 1:]).max() < 1e-4
    # zoomed out, everything off the picture is background
    small = src.render(req(mode="isotropic", variance=0.0, zoom=0.25)).image
    assert np.allclose(small[:4], small[0, 0]) and small[N // 2, N // 2].std() >= 0


def test_the_ellipse_outline_has_the_2_sigma_radii_in_screen_pixels():
    cov = covariance(1e-3, 4.0, 0.0)
    pts = ellipse_outline(cov, 2.0, (N, N), n=720)
    sig_px = math.sqrt(1e-3) * (N - 1) / 2 * 2.0
    assert np.abs(pts[:, 0]).max() == pytest.approx(2 * sig_px, rel=1e-3)
    assert np.abs(pts[:, 1]).max() == pytest.approx(2 * sig_px / 4, rel=1e-3)


# ----- comparison with the exact blur ----------------------------------------------------------------------------
@pytest.mark.parametrize("opts", [
    {"mode": "isotropic", "variance": 1e-3},
    {"mode": "anisotropic", "variance": 3e-3, "ratio": 5.0, "angle": 30.0},
    {"mode": "isotropic", "variance": 1e-4, "antialias": True, "zoom": 0.5},
    {"mode": "anisotropic", "variance": 1e-3, "ratio": 2.0, "angle": 120.0, "antialias": True, "zoom": 3.0,
     "center": (9.5, -6.3)},
])
def test_an_exact_field_matches_the_exact_panel(photo, opts):
    opts = dict(opts)
    zoom, center = opts.pop("zoom", 1.0), opts.pop("center", (0.0, 0.0))
    src = ScaleSpaceSource(exact_field(photo), photo)
    fr = src.render(req(w=3 * N + 4, h=N, zoom=zoom, center=center, compare=True, **opts))
    assert fr.image.shape == (N, 3 * N + 4, 3)
    assert fr.aux["psnr"] > 40, fr.aux
    field_panel, exact_panel = fr.image[:, :N], fr.image[:, N + 2:2 * N + 2]
    assert np.abs(field_panel - exact_panel).max() < 0.02
    assert fr.timings["field"] >= 0 and "exact" in fr.timings


def test_a_wrong_field_scores_a_low_psnr(photo):
    class Flat(Field):
        name = "flat"

        def evaluate(self, x, cov):
            return torch.zeros(x.shape[0], 3)

    fr = ScaleSpaceSource(Flat(), photo).render(req(w=3 * N, h=N, compare=True, mode="isotropic", variance=1e-3))
    assert fr.aux["psnr"] < 20
    err = fr.image[:, 2 * N:]
    assert err.std() > 0.01  # the error map shows something


def test_foveated_blur_is_sharp_at_the_fovea_and_compares_with_the_level_reference(photo):
    big = np.repeat(np.repeat(photo, 2, axis=0), 2, axis=1)  # 128² so each region has enough pixels
    src = ScaleSpaceSource(ExactBlurField(big), big)
    fovea = (-0.5, -0.5)
    fr = src.render(req(128, 128, mode="foveated", variance=5e-3, fovea=fovea, fovea_radius=0.2))
    img = fr.image
    near, far = img[20:44, 20:44], img[84:108, 84:108]
    assert laplacian_energy(near) > 5 * laplacian_energy(far)
    core = slice(27, 37)  # within 0.2 field units (12.7 px) of the fovea at pixel 31.75
    assert np.abs(img[core, core] - big[core, core]).max() < 1e-3  # inside r0 nothing is blurred
    cmp = src.render(req(3 * 128 + 4, 128, mode="foveated", variance=5e-3, fovea=fovea, compare=True))
    assert cmp.aux["psnr"] > 35 and "sigma levels" in cmp.aux["compare_note"]


class FakeTrainer:
    """Stands in for a trainer: a field, its lock, and the one snapshot publisher trainers use."""

    def __init__(self, field, image) -> None:
        self.field, self.lock = field, threading.Lock()
        self.live = SnapshotPublisher(lambda: self.field, self.lock, clone=inference_copy,
                                      info_fn=lambda: {"image": image})


def test_a_live_field_is_copied_once_per_revision_and_never_waits_for_training(photo):
    nf = pytest.importorskip("methods.ngssf.neural_field")
    trainer = FakeTrainer(nf.field_from_preset("tiny", "picture", 2, 3), photo)
    src = ScaleSpaceSource(exact_field(photo), photo)
    src.follow(trainer.live, "training")
    copies = trainer.live.copies
    src.render(req(mode="isotropic", variance=1e-3, revision=1))
    done = []
    with trainer.lock:  # "training" holds the lock: the same revision renders from the copy without waiting
        t = threading.Thread(target=lambda: done.append(src.render(req(mode="isotropic", variance=1e-4,
                                                                         revision=1))))
        t.start()
        t.join(10)
        assert done, "render blocked on the trainer's lock"
    trainer.live.bump()  # a training step; the view's next revision makes the source copy again
    assert trainer.live.copies == copies  # nothing copied while the revision stood still
    src.render(req(mode="isotropic", variance=1e-3, revision=2))
    assert trainer.live.copies == copies + 1


def test_a_neural_field_renders_in_every_mode_and_its_live_copy_follows_training(photo):
    nf = pytest.importorskip("methods.ngssf.neural_field")
    field = nf.field_from_preset("tiny", "picture", 2, 3)
    trainer = FakeTrainer(field, photo)
    src = ScaleSpaceSource(exact_field(photo), photo)
    src.follow(trainer.live)
    for opts in ({"mode": "isotropic", "variance": 1e-3}, {"mode": "anisotropic", "variance": 1e-3, "ratio": 4.0,
                                                           "angle": 45.0, "antialias": True},
                 {"mode": "foveated", "variance": 1e-2, "fovea": (0.1, 0.1), "compare": True, "ellipse": True}):
        fr = src.render(req(w=3 * 32 + 4, h=32, zoom=0.5, revision=1, **opts))
        assert np.isfinite(fr.image).all() and 0 <= fr.image.min() and fr.image.max() <= 1
    assert fr.aux["psnr"] is not None  # an untrained field: finite, low
    snap = src.slot.get(1)[0]
    assert isinstance(snap, torch.nn.Module) and not snap.training and snap is not field
    assert not any(p.requires_grad for p in snap.parameters())
    before = src.render(req(32, 32, mode="isotropic", variance=1e-4, revision=1)).image
    with torch.no_grad():  # "a training step"
        for p in field.parameters():
            p.add_(0.05 * torch.randn_like(p))
    trainer.live.bump()
    same = src.render(req(32, 32, mode="isotropic", variance=1e-4, revision=1)).image
    newer = src.render(req(32, 32, mode="isotropic", variance=1e-4, revision=2)).image
    assert np.array_equal(before, same) and np.abs(newer - before).max() > 1e-3


def test_bad_requests_fail_with_one_clear_line(photo):
    src = ScaleSpaceSource(exact_field(photo), photo)
    with pytest.raises(ValueError, match="mode: 'swirl' is not one of isotropic, anisotropic, foveated"):
        src.render(req(mode="swirl"))
    with pytest.raises(ValueError, match="variance: 5.0 is above the maximum 0.1"):
        req(variance=5.0)
    with pytest.raises(ValueError, match="reference image"):
        ScaleSpaceSource(exact_field(photo), np.zeros((4, 4, 3)) * np.nan)


# ----- the view in the real studio ---------------------------------------------------------------------------------
def _leave_settled(studio, view) -> None:
    """Settle, then let the panel freeze into its static texture (PanelTexture swaps after 0.3 s without frames; a
    capture on the swap frame can read a blank panel), so the next test starts from a steady screen."""
    from guitools import run_for, settle

    settle(studio, view)
    run_for(studio, 0.6)


def _panel(view) -> np.ndarray:
    """The central part of the picture as the view shows it (inside the image, away from its border)."""
    img = view.last_image()[..., :3]
    h, w = img.shape[:2]
    iw, ih = view.source.image_size
    s = int(min(w, h, iw, ih) * 0.7) // 2
    return img[h // 2 - s:h // 2 + s, w // 2 - s:w // 2 + s]


@pytest.mark.gui
def test_scale_space_view_smooths_with_the_variance_slider_and_blurs_anisotropically(studio):
    import dearpygui.dearpygui as dpg
    from guitools import settle

    view = studio.views["scale_space"]
    t = view.tags
    for key, value in (("mode", "isotropic"), ("compare", False), ("ellipse", False), ("antialias", False),
                       ("variance", -6.0), ("zoom", 0.0)):
        dpg.set_value(t[key], value)
    view.center = [0.0, 0.0]
    settle(studio, view)
    sharp = _panel(view)
    assert sharp.std() > 0.05
    dpg.set_value(t["variance"], -2.5)  # σ² ≈ 3e-3: several training pixels
    settle(studio, view)
    assert view.uploaded_request.options.variance == pytest.approx(10 ** -2.5, rel=1e-3)
    smooth = _panel(view)
    assert laplacian_energy(smooth) < laplacian_energy(sharp) / 5, (laplacian_energy(sharp),
                                                                     laplacian_energy(smooth))
    assert "px" in dpg.get_value(t["variance_label"])

    dpg.set_value(t["mode"], "anisotropic")
    dpg.set_value(t["ratio"], 10.0)
    dpg.set_value(t["angle"], 0.0)
    dpg.set_value(t["variance"], -3.0)
    settle(studio, view)
    gx, gy = grad_energy(_panel(view))
    dpg.set_value(t["angle"], 90.0)
    settle(studio, view)
    gx90, gy90 = grad_energy(_panel(view))
    # θ = 0 blurs along x (columns), θ = 90° along y: turning the ellipse swaps which gradients survive. The
    # product cancels the photo's own x/y bias (an isotropic blur gives ~1; measured 5.8-7.5 for 150-250 px panels)
    assert (gy / gx) * (gx90 / gy90) > 4, (gx, gy, gx90, gy90)
    assert gy > gx and gx90 > gy90
    dpg.set_value(t["angle"], 0.0)

    dpg.set_value(t["compare"], True)
    settle(studio, view)
    assert view.worker.latest().frame.aux.get("psnr") is not None
    assert "PSNR" in dpg.get_value(t["info"]) and "dB" in dpg.get_value(t["psnr"])
    for key, value in (("mode", "isotropic"), ("compare", False), ("ellipse", True), ("antialias", True),
                       ("variance", -4.0)):
        dpg.set_value(t[key], value)
    _leave_settled(studio, view)


@pytest.mark.gui
def test_scale_space_view_reports_bad_inputs_in_one_line_and_keeps_going(studio, tmp_path):
    import dearpygui.dearpygui as dpg
    from guitools import run_for

    view = studio.views["scale_space"]
    bad = tmp_path / "not_an_image.png"
    bad.write_text("hello")
    assert view.train_on_image(str(bad)) is None
    run_for(studio, 0.1)
    assert "cannot train" in studio._notice[0] and "cannot train" in dpg.get_value(view.tags["error"])
    assert len(view.error_text.splitlines()) == 1 and "Traceback" not in view.error_text
    assert view.train_on_image(str(tmp_path / "missing.png")) is None
    assert view.load_demo("no-such-demo") is False
    assert "demo" in studio._notice[0]
    # the view's geometry helper agrees with the source: the panel centre looks at the view centre
    x0, y0, x1, y1 = view.image_rect()
    view.center = [10.0, -6.0]  # image pixels from the image centre
    fx, fy = view.screen_to_field((x0 + x1) / 2, (y0 + y1) / 2)
    iw, ih = view.source.image_size
    assert fx == pytest.approx(10.0 * 2 / (iw - 1), abs=1e-6) and fy == pytest.approx(-6.0 * 2 / (ih - 1), abs=1e-6)
    view.center = [0.0, 0.0]
    run_for(studio, 0.2)
    _leave_settled(studio, view)
    assert view.last_image()[..., :3].std() > 0.03


@pytest.mark.gui
def test_scale_space_view_trains_on_an_opened_image_and_follows_the_live_field(studio, tmp_path):
    import imageio.v3 as iio
    from guitools import run_until, settle

    from assets.photos import load_photo

    path = tmp_path / "mine.png"
    iio.imwrite(path, (load_photo("chelsea", size=48) * 255).astype(np.uint8))
    view = studio.views["scale_space"]
    handle = view.train_on_image(str(path), preset="test_tiny", out_dir=str(tmp_path / "run"))
    assert handle is not None
    try:
        assert run_until(studio, lambda: view.live is not None and view.live.revision >= 3, 60), \
            handle.snapshot().error
        assert view.source.slot.live is view.live and "mine.png" in view.field_label
        settle(studio, view)
        assert view.uploaded_request.revision > 0  # it draws a snapshot of the live field
        assert view.last_image()[..., :3].std() > 0.01
    finally:
        handle.cancel()
        assert run_until(studio, lambda: handle.finished, 30)
    assert view.load_demo(view.demo_name)  # back to the demo field for the other tests
    _leave_settled(studio, view)
