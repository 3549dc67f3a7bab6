"""The NeRF view's source and the sampler probe, without a GUI: progressive passes end in the one-shot image,
the zoom sets the cone radius, every heat map agrees with the probe of the same pixel, the probe's series match
their definitions, and the render worker cancels a progressive render when a newer request comes."""
from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import torch

from methods.nerf360.config import TRAIN_PRESETS, SceneView
from methods.nerf360.live_source import MODES, NerfOptions, NerfSource, mass_intervals, ray_values
from methods.nerf360.model import Nerf360, camera_rays
from methods.nerf360.probe import ProbeKnobs, ProbeResult, depth_ticks, pixel_camera, probe_series, step_xy
from render.camera import frame_camera
from render.live import Frame, RenderRequest

VIEW = SceneView(focal=30.0, width=32, height=24, near=0.5, far=100.0, eye=(3.0, 0.5, 1.0), center=(0.0, 0.0, 0.2))


@pytest.fixture(scope="module")
def source() -> NerfSource:
    torch.manual_seed(3)
    model = Nerf360(TRAIN_PRESETS["test_tiny"].model, scene_center=(0.0, 0.0, 0.2), scene_radius=3.2).eval()
    with torch.no_grad():  # a density field with structure: random weights, a positive density bias
        model.nerf_mlp.density.bias.fill_(2.0)
        model.prop_mlp.density.bias.fill_(1.0)
    return NerfSource(model, VIEW, "test model")


def request(src: NerfSource, zoom: float = 1.0, mode: str = "rgb", progressive: bool = True) -> RenderRequest:
    cam = frame_camera(src.framing(), VIEW.width, VIEW.height).zoomed(zoom)
    return RenderRequest(VIEW.width, VIEW.height, zoom=zoom, camera=cam,
                         options=NerfOptions(mode=mode, progressive=progressive))


def test_progressive_passes_end_in_exactly_the_one_shot_image(source):
    source.seconds_per_ray = 1e-3  # 768 px × 1 ms ≫ 0.25 s: the first pass must be coarse
    frames = list(source.render_progressive(request(source)))
    scales = [f.aux["pass_scale"] for f in frames]
    assert scales[0] < 1.0 and scales[-1] == 1.0 and scales == sorted(scales)
    assert frames[-1].aux["complete"] and not any(f.aux["complete"] for f in frames[:-1])
    one_shot = source.render(request(source, progressive=False))
    np.testing.assert_allclose(frames[-1].image, one_shot.image, atol=1e-6)
    assert frames[0].image.shape == one_shot.image.shape  # coarse passes are shown magnified, same frame size


def test_the_first_pass_fits_its_time_budget_and_passes_double_up_to_full_size(source):
    source.seconds_per_ray = 2e-4
    n = 640 * 480
    scales = source.pass_scales(n)
    assert n * scales[0] ** 2 * source.seconds_per_ray <= source.first_pass_s
    assert scales[-1] == 1.0 and all(b == pytest.approx(2 * a) or b == 1.0 for a, b in zip(scales, scales[1:]))
    source.seconds_per_ray = 1e-9
    assert source.pass_scales(n) == [1.0]  # fast enough: no coarse pass at all


@pytest.mark.parametrize("zoom", [1 / 8, 1 / 2, 2.0])
def test_zoom_scales_every_cone_radius_by_one_over_zoom(source, zoom):
    base = source.render(request(source, 1.0, progressive=False)).aux["cone_radius"]
    zoomed = source.render(request(source, zoom, progressive=False)).aux["cone_radius"]
    assert zoomed == pytest.approx(base / zoom, rel=1e-4)
    assert source.render(request(source, 1.0, progressive=False)).aux["cone_ratio"] == pytest.approx(1.0, rel=1e-3)
    rays = camera_rays(request(source, zoom).camera)  # the ray bundle itself, not just the read-out
    assert float(rays.radii.median()) == pytest.approx(float(camera_rays(request(source).camera).radii.median()) / zoom,
                                                       rel=1e-3)


def test_every_render_mode_renders_and_heat_maps_differ_from_colour(source):
    images = {m: source.render(request(source, mode=m, progressive=False)).image for m in MODES}
    for m, img in images.items():
        assert img.shape == (VIEW.height, VIEW.width, 3) and np.isfinite(img).all(), m
    assert np.abs(images["depth"] - images["rgb"]).mean() > 0.05
    assert np.abs(images["proposal loss"] - images["distortion"]).mean() > 0.01


def test_heat_maps_equal_the_probe_of_the_same_pixel(source):
    cam = request(source).camera
    rays = source.rays(cam)
    for x, y in [(5, 4), (16, 12), (30, 20)]:
        probe = source.probe(cam, x + 0.5, y + 0.5)
        ray = rays[y:y + 1, x]
        assert float(ray_values(source.model, ray, "proposal loss")[0, 0]) == pytest.approx(probe.total_prop_loss,
                                                                                           rel=1e-4, abs=1e-7)
        assert float(ray_values(source.model, ray, "distortion")[0, 0]) == pytest.approx(probe.distortion, rel=1e-4)
        assert float(ray_values(source.model, ray, "depth")[0, 0]) == pytest.approx(probe.depth_percentiles[1],
                                                                                   rel=1e-4)
        assert float(ray_values(source.model, ray, "accumulation")[0, 0]) == pytest.approx(probe.acc, rel=1e-4)


def test_pixel_camera_casts_the_same_cone_as_that_pixel_of_the_full_camera(source):
    cam = request(source, 0.5).camera
    full = camera_rays(cam)
    one = camera_rays(pixel_camera(cam, 7.9, 3.2))
    for f in ("origins", "directions", "radii"):
        torch.testing.assert_close(getattr(one, f)[0, 0], getattr(full, f)[3, 7], rtol=1e-5, atol=1e-6)


def test_mass_intervals_closed_forms():
    one_hot = torch.zeros(1, 10)
    one_hot[0, 3] = 1.0
    assert int(mass_intervals(one_hot)[0]) == 1
    assert int(mass_intervals(torch.full((1, 40), 1 / 40))[0]) == 38  # ceil(0.95 × 40)
    assert int(mass_intervals(torch.tensor([[0.5, 0.46, 0.04]]))[0]) == 2


# ----- the probe ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def probe(source) -> ProbeResult:
    return source.probe(request(source).camera, 16.5, 12.5)


def test_probe_histograms_are_normalized_and_the_violation_is_the_proposal_loss(probe):
    assert len(probe.proposals) == len(probe.resampling) == len(probe.bounds) == 2
    assert probe.nerf_weights.sum() == pytest.approx(1.0, abs=1e-5)
    for edges, w in probe.proposals + probe.resampling:
        assert np.all(np.diff(edges) >= -1e-7) and w.sum() == pytest.approx(1.0, abs=1e-5)
    for k in range(2):
        v = probe.violation(k)
        assert np.all(v >= 0) and np.all((v == 0) | (probe.nerf_weights > probe.bounds[k]))
        eps = np.finfo(np.float32).eps
        assert probe.prop_loss[k] == pytest.approx(float((v ** 2 / (probe.nerf_weights + eps)).sum()), rel=1e-3,
                                                   abs=1e-8)
    p5, p50, p95 = probe.depth_percentiles
    assert VIEW.near <= p5 <= p50 <= p95 <= VIEW.far


def test_probe_knobs_change_only_the_sampler(source, probe):
    cam = request(source).camera
    flat = source.probe(cam, 16.5, 12.5, ProbeKnobs(dilation_scale=0.0, anneal=1.0))
    e, w = flat.proposals[0]
    re, rw = flat.resampling[0]  # no dilation, a = 1: what is drawn from IS the learned histogram
    np.testing.assert_allclose(re, e, atol=1e-7)
    np.testing.assert_allclose(rw, w / w.sum(), atol=1e-6)
    a0 = source.probe(cam, 16.5, 12.5, ProbeKnobs(anneal=0.0))
    re, rw = a0.resampling[0]
    live = rw[np.diff(re) > 0]  # a = 0: every non-degenerate bin gets the same mass
    np.testing.assert_allclose(live, np.full_like(live, 1 / len(live)), rtol=1e-5)
    more = source.probe(cam, 16.5, 12.5, ProbeKnobs(proposal_samples=20, nerf_samples=9, dilation_scale=2.0))
    assert [len(w) for _, w in more.proposals] == [20, 20] and len(more.nerf_weights) == 9
    np.testing.assert_allclose(more.dilations, [2 * d for d in source.probe(
        cam, 16.5, 12.5, ProbeKnobs(proposal_samples=20, nerf_samples=9)).dilations])
    np.testing.assert_allclose(probe.proposals[0][1], flat.proposals[0][1], atol=1e-6)  # round 1 is not resampled


def test_probe_rejects_pixels_outside_the_image(source):
    with pytest.raises(ValueError, match="outside"):
        source.probe(request(source).camera, 40, 3)


def test_step_xy_and_depth_ticks_closed_forms():
    x, y = step_xy(np.array([0.0, 0.5, 1.0]), np.array([2.0, 4.0]))
    np.testing.assert_allclose(x, [0.0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(y, [2.0, 2.0, 4.0, 4.0])
    ticks = depth_ticks(1.0, 1000.0)
    labels, s = zip(*ticks)
    assert labels[0] == "1" and labels[-1] == "1e+03" and s[0] == pytest.approx(0.0) and s[-1] == pytest.approx(1.0)
    # s = (1 − 1/t) / (1 − 1/1000) for near 1, far 1000 (g = 1/t)
    for label, v in ticks:
        assert v == pytest.approx((1 - 1 / float(label)) / (1 - 1e-3), abs=1e-9)
    assert all(b - a >= 0.05 - 1e-12 for a, b in zip(s, s[1:-1]))


def test_probe_series_hold_every_curve_and_the_bars_follow_the_weights(probe):
    series = probe_series(probe, bar_width=256, bar_height=100)
    assert set(series.lines) == {"proposal 1", "proposal 2", "drawn for round 2", "drawn for NeRF", "bound 1",
                                 "bound 2", "NeRF weights"}
    assert set(series.shades) == {"violation 1", "violation 2"}
    assert set(series.ticks) == {"round 1 samples", "round 2 samples", "NeRF samples"}
    assert all(len(x) > 0 for x, *_ in [*series.lines.values(), *series.shades.values(), *series.ticks.values()])
    dens = ProbeResult.density(probe.nerf_edges, probe.nerf_weights)
    j = int(np.argmax(dens))  # the densest NeRF bin: its column is filled to density / y_max of the height
    (s0, _), (s1, y_max) = series.bars_bounds
    c = min(int((0.5 * (probe.nerf_edges[j] + probe.nerf_edges[j + 1]) - s0) / (s1 - s0) * 256), 255)
    filled = int((series.bars[:, c, 3] > 0).sum())
    assert filled == pytest.approx(min(dens[j] / y_max, 1.0) * 100, abs=1.5)  # clipped at the top if taller
    np.testing.assert_allclose(series.bars[-1, c, :3], probe.nerf_rgb[j], atol=1e-6)
    lo, hi = series.x_focus
    assert 0.0 <= lo < probe.nerf_edges[0] and probe.nerf_edges[-1] < hi <= 1.0


# ----- the render worker: a newer request cancels a progressive render ---------------------------------------------

class SlowProgressive:
    Options = NerfOptions

    def __init__(self) -> None:
        self.started, self.closed, self.yielded = [], [], []

    def render(self, request):  # pragma: no cover - the worker uses render_progressive
        raise AssertionError("render_progressive should be used")

    def render_progressive(self, request):
        self.started.append(request.zoom)
        try:
            for k in range(5):
                time.sleep(0.15)
                self.yielded.append((request.zoom, k))
                yield Frame(np.full((4, 4, 3), k / 4, np.float32), aux={"k": k})
        finally:
            self.closed.append(request.zoom)


def test_render_worker_stops_a_progressive_render_when_a_newer_request_arrives():
    from app.render_worker import RenderWorker

    src = SlowProgressive()
    worker = RenderWorker(src, "test")
    try:
        worker.submit(RenderRequest(4, 4, zoom=1.0, options=NerfOptions()), (4, 4))
        deadline = time.monotonic() + 5
        while not src.yielded and time.monotonic() < deadline:
            time.sleep(0.01)
        worker.submit(RenderRequest(4, 4, zoom=2.0, options=NerfOptions()), (4, 4))
        assert worker.wait_idle(10)
        assert src.started == [1.0, 2.0] and src.closed == [1.0, 2.0]
        assert len([z for z, _ in src.yielded if z == 1.0]) < 5  # the old render was cut short
        fin = worker.latest()
        assert fin.request.zoom == 2.0 and fin.final and fin.frame.aux["k"] == 4
        assert worker.last_full_seconds is not None and worker.last_full_seconds >= 5 * 0.15
    finally:
        worker.stop()
    assert threading.active_count() >= 1 and math.isfinite(worker.last_full_seconds)
