"""Controllers: exact motion for held keys, orbit invariants, pan that tracks the cursor, per-frame drag deltas."""
import math

import numpy as np
import pytest

from render.camera import Camera
from render.controls import (
    FLY_KEYS,
    MOUSE_LEFT,
    MOUSE_RIGHT,
    ControllerConfig,
    DragTracker,
    FlyController,
    OrbitController,
)

BASE = Camera(fx=150.0, fy=150.0, cx=64.0, cy=48.0, width=128, height=96, world_to_cam=np.eye(4))
LIMIT = math.radians(89.0)


def _fly(**kw) -> FlyController:
    args = dict(position=[0.3, -0.2, 1.0], yaw=0.7, pitch=0.25, speed=2.5)
    args.update(kw)
    return FlyController(**args)


def _hold(fly: FlyController, keys, frames: int = 30, dt: float = 1 / 30) -> np.ndarray:
    start = fly.position.copy()
    for _ in range(frames):
        fly.update(keys, dt)
    return fly.position - start


# ----- fly --------------------------------------------------------------------------------------------------------
def test_fly_keys_constant():
    assert FLY_KEYS == {"w", "a", "s", "d", "space", "shift"}


def test_fly_w_moves_speed_t_along_view_direction():
    fly = _fly()
    view = fly.camera(BASE).cam_to_world[:3, 2]  # the rendered camera's optical axis
    moved = _hold(fly, ["w"])
    np.testing.assert_allclose(moved, 2.5 * 1.0 * view, atol=1e-6)
    moved_back = _hold(fly, {"s"})
    np.testing.assert_allclose(moved_back, -2.5 * view, atol=1e-6)


def test_fly_strafe_is_perpendicular_and_to_image_right():
    fly = _fly()
    cam = fly.camera(BASE)
    right_img = cam.cam_to_world[:3, 0]
    moved = _hold(fly, ["d"])
    np.testing.assert_allclose(moved, 2.5 * right_img, atol=1e-6)
    assert abs(moved @ cam.cam_to_world[:3, 2]) < 1e-9  # perpendicular to the view
    assert abs(moved @ fly.up) < 1e-9  # and horizontal
    np.testing.assert_allclose(_hold(fly, ["a"]), -moved, atol=1e-6)


def test_fly_space_shift_along_world_up():
    fly = _fly()
    np.testing.assert_allclose(_hold(fly, ["space"]), [0.0, 0.0, 2.5], atol=1e-6)
    np.testing.assert_allclose(_hold(fly, ["shift"]), [0.0, 0.0, -2.5], atol=1e-6)
    fly_y = _fly(up=[0.0, 1.0, 0.0])
    np.testing.assert_allclose(_hold(fly_y, ["space"]), [0.0, 2.5, 0.0], atol=1e-6)


def test_fly_diagonal_is_normalised():
    fly = _fly()
    fwd, right = fly.forward, fly.right
    moved = _hold(fly, ["w", "d"])
    assert np.linalg.norm(moved) == pytest.approx(2.5, abs=1e-6)
    np.testing.assert_allclose(moved, 2.5 * (fwd + right) / math.sqrt(2), atol=1e-6)


def test_fly_opposite_and_unknown_keys_do_not_move():
    fly = _fly()
    assert fly.update(["w", "s"], 0.1) is False
    assert fly.update(["q", "escape"], 0.1) is False
    assert fly.update(["w"], 0.0) is False
    np.testing.assert_allclose(fly.position, [0.3, -0.2, 1.0])
    assert fly.update(["W"], 0.1) is True  # key names are case-insensitive


def test_fly_look_turns_and_clamps_pitch():
    fly = _fly(pitch=0.0, look_sensitivity=0.01)
    right_before = fly.right
    fly.look(10.0, 0.0)  # mouse right -> view turns toward the old right
    assert fly.forward @ right_before > 0
    assert fly.yaw == pytest.approx(0.7 - 0.1)
    fly.look(0.0, 5.0)  # mouse down -> look down
    assert fly.pitch == pytest.approx(-0.05)
    fly.look(0.0, -1e6)
    assert fly.pitch == pytest.approx(LIMIT)
    fly.look(0.0, 1e6)
    assert fly.pitch == pytest.approx(-LIMIT)
    R = fly.world_to_cam()[:3, :3]
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-9)


def test_fly_from_camera_reproduces_pose():
    cam = Camera.look_at([2.0, 1.0, 1.5], [0.0, 0.0, 0.2], width=128, height=96)
    fly = FlyController.from_camera(cam, config=ControllerConfig(fly_speed=3.0))
    assert fly.speed == 3.0
    np.testing.assert_allclose(fly.world_to_cam(), cam.world_to_cam, atol=1e-9)
    np.testing.assert_allclose(fly.camera(cam).world_to_cam, cam.world_to_cam, atol=1e-9)


# ----- orbit ------------------------------------------------------------------------------------------------------
def _orbit(**kw) -> OrbitController:
    args = dict(target=[0.2, -0.1, 0.3], distance=3.0, yaw=0.4, pitch=0.3)
    args.update(kw)
    return OrbitController(**args)


def _target_pixel(orb: OrbitController, target=None) -> np.ndarray:
    cam = orb.camera(BASE)
    uv, z = cam.project(np.asarray([orb.target if target is None else target]))
    assert z[0] > 0
    return uv[0]


def test_orbit_rotate_keeps_distance_and_target_centred():
    orb = _orbit()
    for dx, dy in [(30.0, 0.0), (0.0, -25.0), (-70.0, 40.0), (500.0, 3.0)]:
        orb.rotate(dx, dy)
        cam = orb.camera(BASE)
        assert np.linalg.norm(cam.position - orb.target) == pytest.approx(3.0, abs=1e-9)
        np.testing.assert_allclose(_target_pixel(orb), [BASE.cx, BASE.cy], atol=1e-9)


def test_orbit_rotate_directions():
    orb = _orbit(pitch=0.0, config=ControllerConfig(rotate_sensitivity=0.01))
    orb.rotate(10.0, 20.0)
    assert orb.yaw == pytest.approx(0.4 - 0.1)
    assert orb.pitch == pytest.approx(0.2)  # drag down raises the eye (scene top tips toward you)
    assert orb.eye[2] > orb.target[2]


def test_orbit_pitch_clamp():
    orb = _orbit()
    orb.rotate(0.0, 1e6)
    assert orb.pitch == pytest.approx(LIMIT)
    orb.rotate(0.0, -1e6)
    assert orb.pitch == pytest.approx(-LIMIT)
    assert _orbit(pitch=3.0).pitch == pytest.approx(LIMIT)


@pytest.mark.parametrize("steps", [1, 3, -2, 0.5])
def test_orbit_dolly_scales_distance(steps):
    orb = _orbit()
    orb.dolly(steps)
    assert orb.distance == pytest.approx(3.0 * 0.9 ** steps)
    np.testing.assert_allclose(_target_pixel(orb), [BASE.cx, BASE.cy], atol=1e-9)


def test_orbit_dolly_clamped():
    orb = _orbit(config=ControllerConfig(min_distance=0.5, max_distance=10.0))
    orb.dolly(1000)
    assert orb.distance == 0.5
    orb.dolly(-1000)
    assert orb.distance == 10.0


@pytest.mark.parametrize("dx,dy", [(0.5, 0.0), (0.0, -0.25), (0.3, 0.7), (12.0, -9.0)])
def test_orbit_pan_follows_cursor(dx, dy):
    orb = _orbit()
    old_target = orb.target.copy()
    orb.pan(dx, dy, BASE.fx)
    # The old target (at the orbit distance) moved with the cursor by exactly the dragged pixels.
    np.testing.assert_allclose(_target_pixel(orb, old_target), [BASE.cx + dx, BASE.cy + dy], atol=1e-6)
    # Pure translation in the camera plane: distance and angles unchanged, new target still centred.
    assert orb.distance == 3.0 and orb.yaw == 0.4 and orb.pitch == 0.3
    np.testing.assert_allclose(_target_pixel(orb), [BASE.cx, BASE.cy], atol=1e-9)
    shift = orb.target - old_target
    assert np.linalg.norm(shift) == pytest.approx(3.0 * math.hypot(dx, dy) / BASE.fx)


def test_orbit_pan_rejects_bad_focal():
    with pytest.raises(ValueError):
        _orbit().pan(1.0, 1.0, 0.0)


def test_orbit_from_camera_reproduces_pose_and_reset():
    cam = Camera.look_at([2.0, -1.0, 1.5], [0.1, 0.2, 0.3], width=128, height=96)
    orb = OrbitController.from_camera(cam, target=[0.1, 0.2, 0.3])
    np.testing.assert_allclose(orb.world_to_cam(), cam.world_to_cam, atol=1e-9)
    assert orb.distance == pytest.approx(np.linalg.norm([1.9, -1.2, 1.2]))
    orb.rotate(40.0, 10.0)
    orb.pan(5.0, 3.0, 100.0)
    orb.dolly(2)
    orb.reset()
    np.testing.assert_allclose(orb.camera(cam).world_to_cam, cam.world_to_cam, atol=1e-9)


def test_orbit_from_camera_default_target_on_optical_axis():
    cam = Camera.look_at([3.0, 0.0, 0.0], [0.0, 0.5, 0.0], width=64, height=64)
    orb = OrbitController.from_camera(cam)
    np.testing.assert_allclose(orb.world_to_cam(), cam.world_to_cam, atol=1e-9)  # same view, no jump
    fwd = cam.cam_to_world[:3, 2]
    foot = cam.position + fwd * float(-cam.position @ fwd)  # point on the axis closest to the origin
    np.testing.assert_allclose(orb.target, foot, atol=1e-9)


def test_orbit_other_up_axis():
    orb = OrbitController(target=[0.0, 0.0, 0.0], distance=2.0, yaw=0.0, pitch=0.5, up=[0.0, 1.0, 0.0])
    assert orb.eye[1] == pytest.approx(2.0 * math.sin(0.5))
    uv, _ = orb.camera(BASE).project(np.array([[0.0, 0.1, 0.0]]))
    assert uv[0, 1] < BASE.cy  # +y appears up


# ----- drag tracker -----------------------------------------------------------------------------------------------
def test_drag_press_outside_never_drags():
    t = DragTracker()
    assert t.update(10, 10, set(), inside=False) == {}
    assert t.update(10, 10, {MOUSE_LEFT}, inside=False) == {}
    assert t.update(50, 60, {MOUSE_LEFT}, inside=True) == {}  # held since outside: still not a drag
    assert not t.is_dragging


def test_drag_per_frame_deltas_sum_to_total():
    t = DragTracker()
    t.update(100, 100, set(), inside=True)
    assert t.update(100, 100, {MOUSE_LEFT}, inside=True) == {MOUSE_LEFT: (0.0, 0.0)}
    assert t.is_dragging
    path = [(103, 101), (110, 95), (110, 95), (90, 120.5)]
    deltas = [t.update(x, y, {MOUSE_LEFT}, inside=True)[MOUSE_LEFT] for x, y in path]
    assert deltas == [(3.0, 1.0), (7.0, -6.0), (0.0, 0.0), (-20.0, 25.5)]  # per frame, not cumulative
    np.testing.assert_allclose(np.sum(deltas, axis=0), [90 - 100, 120.5 - 100])
    assert t.update(95, 120, set(), inside=True) == {}  # release ends the drag
    assert not t.is_dragging
    assert t.update(80, 80, set(), inside=True) == {}


def test_drag_continues_outside_until_release():
    t = DragTracker()
    t.update(5, 5, set(), inside=True)
    t.update(5, 5, {MOUSE_RIGHT}, inside=True)
    assert t.update(-40, 7, {MOUSE_RIGHT}, inside=False) == {MOUSE_RIGHT: (-45.0, 2.0)}
    assert t.update(-41, 9, {MOUSE_RIGHT}, inside=False) == {MOUSE_RIGHT: (-1.0, 2.0)}
    assert t.update(-41, 9, set(), inside=False) == {}


def test_drag_buttons_independent():
    t = DragTracker()
    t.update(0, 0, set(), inside=True)
    t.update(0, 0, {MOUSE_LEFT}, inside=True)
    out = t.update(4, 0, {MOUSE_LEFT, MOUSE_RIGHT}, inside=True)  # right pressed mid-drag, inside
    assert out == {MOUSE_LEFT: (4.0, 0.0), MOUSE_RIGHT: (0.0, 0.0)}
    out = t.update(6, 1, {MOUSE_RIGHT}, inside=True)
    assert out == {MOUSE_RIGHT: (2.0, 1.0)}
    assert t.dragging == {MOUSE_RIGHT}


def test_drag_ignores_non_finite_position():
    t = DragTracker()
    t.update(10, 10, {MOUSE_LEFT}, inside=True)
    assert t.update(float("nan"), 3, {MOUSE_LEFT}, inside=False) == {MOUSE_LEFT: (0.0, 0.0)}
    assert t.update(12, 11, {MOUSE_LEFT}, inside=False) == {MOUSE_LEFT: (2.0, 1.0)}


def test_drag_cancel_needs_new_press():
    t = DragTracker()
    t.update(0, 0, {MOUSE_LEFT}, inside=True)
    t.cancel()
    assert t.update(5, 5, {MOUSE_LEFT}, inside=True) == {}
    t.update(5, 5, set(), inside=True)
    assert t.update(5, 5, {MOUSE_LEFT}, inside=True) == {MOUSE_LEFT: (0.0, 0.0)}


def test_config_validation():
    with pytest.raises(ValueError):
        ControllerConfig(dolly_factor=1.5)
    with pytest.raises(ValueError):
        ControllerConfig(pitch_limit=math.pi / 2)
    cfg = ControllerConfig.for_scene_radius(10.0)
    assert cfg.fly_speed == 10.0 and cfg.min_distance == pytest.approx(0.01)
