"""The typed live contract without a GUI: options dataclasses, framing for any panel aspect, previews that keep
the field of view, and the live-training snapshot/follow policy."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pytest

from methods.live_training import FollowPolicy, ModelSlot, SnapshotPublisher
from render.camera import fit_distance, frame_camera
from render.live import Framing, RenderRequest
from render.options import make_options, option, option_specs


@dataclass(frozen=True)
class Opts:
    mode: str = option("a", choices=("a", "b"), labels=("Alpha", "Beta"), help="which")
    level: int = option(2, min=0, max=5, help="how much")
    strength: float = option(0.5, min=0.0, max=1.0, help="how strong")
    on: bool = option(True, help="whether")
    internal: float = 0.0


def test_options_are_typed_checked_and_named_in_errors():
    specs = option_specs(Opts)
    assert [s.name for s in specs] == ["mode", "level", "strength", "on"]  # internal fields get no widget
    o = make_options(Opts, {"mode": "Beta", "level": "3", "on": "no"})
    assert (o.mode, o.level, o.on, o.strength) == ("b", 3, False, 0.5)
    assert hash(o) == hash(make_options(Opts, mode="b", level=3, on=False))  # requests stay hashable
    for bad, msg in (({"mode": "c"}, "mode: 'c' is not one of a, b"), ({"level": 9}, "level: 9 is above"),
                     ({"strength": "x"}, "strength: 'x' is not a number"), ({"nope": 1}, "unknown option")):
        with pytest.raises(ValueError, match=msg):
            make_options(Opts, bad)
    with pytest.raises(ValueError, match="not one of the choices"):
        option("z", choices=("a",))


@pytest.mark.parametrize("size", [(512, 384), (296, 384), (296, 700), (900, 200)])
def test_framing_fits_the_bounding_sphere_into_any_panel_aspect(size):
    """The narrow-panel bug: the fish was cut off in a 296 px wide panel. Points on the bounding sphere's
    silhouette must project inside the image, with the training focal kept (zoom keeps its meaning)."""
    w, h = size
    fr = Framing(center=(0.2, -0.1, 0.3), radius=1.3, focal=700.0)
    cam = frame_camera(fr, w, h)
    assert cam.fx == 700.0 and (cam.width, cam.height) == (w, h)
    rng = np.random.default_rng(0)
    d = rng.normal(size=(4000, 3))
    pts = np.asarray(fr.center) + fr.radius * d / np.linalg.norm(d, axis=1, keepdims=True)
    uv, z = cam.project(pts)
    assert (z > 0).all()
    assert uv[:, 0].min() >= 0 and uv[:, 0].max() <= w and uv[:, 1].min() >= 0 and uv[:, 1].max() <= h
    # tight, not merely inside: the narrow side is nearly filled
    extent = min(uv[:, 0].max() - uv[:, 0].min(), uv[:, 1].max() - uv[:, 1].min())
    assert extent > 0.75 * min(w, h)


def test_min_distance_keeps_the_training_cameras_distance():
    fr = Framing(radius=0.1, focal=500.0, min_distance=4.0)
    cam = frame_camera(fr, 512, 512)
    assert np.linalg.norm(cam.position) == pytest.approx(4.0)
    assert fit_distance(1.0, 500.0, 512, 256) > fit_distance(1.0, 500.0, 512, 512)


def test_a_scaled_preview_camera_keeps_the_field_of_view_and_the_projected_box():
    """Previews scale focal and size together: the object's bounding box in normalised image coordinates is the
    same at render_scale 1/2 as at full size (the old code kept the focal and cropped 40° to 20.6°)."""
    fr = Framing(radius=1.0, focal=703.0)
    full = frame_camera(fr, 512, 384)
    half = full.scaled(0.5)
    assert half.fov_x == pytest.approx(full.fov_x, rel=1e-3) and half.fov_y == pytest.approx(full.fov_y, rel=1e-3)
    pts = np.random.default_rng(1).uniform(-0.7, 0.7, (500, 3))
    a, _ = full.project(pts)
    b, _ = half.project(pts)
    box = lambda uv, c: np.array([uv[:, 0].min() / c.width, uv[:, 0].max() / c.width,  # noqa: E731
                                  uv[:, 1].min() / c.height, uv[:, 1].max() / c.height])
    np.testing.assert_allclose(box(a, full), box(b, half), atol=2e-3)


def test_requests_compare_by_value_and_reject_untyped_options():
    o = make_options(Opts)
    cam = frame_camera(Framing(), 64, 48)
    r1 = RenderRequest(64, 48, camera=cam, options=o, revision=3)
    r2 = RenderRequest(64, 48, camera=frame_camera(Framing(), 64, 48), options=make_options(Opts), revision=3)
    assert r1.same_as(r2) and hash(r1) == hash(r2)
    assert not r1.same_as(RenderRequest(64, 48, camera=cam, options=o, revision=4))
    with pytest.raises(TypeError, match="options dataclass"):
        RenderRequest(8, 8, options={"mode": "a"})


class Model:
    def __init__(self) -> None:
        self.w = 0


def test_snapshots_are_copied_under_the_lock_once_per_revision():
    model, lock = Model(), threading.Lock()
    pub = SnapshotPublisher(lambda: model, lock, info_fn=lambda: {"w": model.w})
    s1 = pub.snapshot()
    assert s1.model is not model and pub.snapshot() is s1 and pub.copies == 1
    model.w = 5
    pub.bump()
    s2 = pub.snapshot()
    assert s2.revision == s1.revision + 1 and s2.model.w == 5 and s2.info["w"] == 5 and s1.model.w == 0


def test_follow_policy_spends_at_most_a_third_of_the_time_on_live_renders():
    class Live:
        revision = 1

    live, pol = Live(), FollowPolicy()
    assert pol.revision(live, None, now=0.0) == 1  # the first snapshot at once
    live.revision = 7
    assert pol.revision(live, 0.9, now=1.0) == 1  # 1 s < max(1 s, 3 × 0.9 s)
    assert pol.revision(live, 0.9, now=2.8) == 7
    live.revision = 9
    assert pol.revision(live, 0.1, now=3.5) == 7 and pol.revision(live, 0.1, now=3.9) == 9
    assert pol.revision(None, 0.1) == 0


def test_model_slot_keeps_one_snapshot_per_request_revision():
    model, lock = Model(), threading.Lock()
    pub = SnapshotPublisher(lambda: model, lock)
    slot = ModelSlot()
    slot.follow(pub)
    a, _ = slot.get(1)
    pub.bump()
    assert slot.get(1)[0] is a  # same request revision: same snapshot, even though training moved on
    assert slot.get(2)[0] is not a
    slot.show("static")
    assert slot.get(5) == ("static", {})
