"""JobManager / JobHandle semantics (threads, cancel, failure, ETA, snapshots) and the Dear PyGui Jobs panel."""
from __future__ import annotations

import dataclasses
import os
import queue
import re
import threading
import time

import numpy as np
import pytest

from app.jobs_manager import JobManager, JobStatus, error_line, format_duration
from methods.demo.jobs import FailingJob, FitImageJob, TickJob
from methods.jobs import FunctionJob, JobCancelled, Progress


def wait_until(pred, timeout: float = 5.0, interval: float = 0.002) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(interval)
    return pred()


@pytest.fixture
def manager():
    m = JobManager()
    yield m
    assert m.shutdown(timeout=5.0), "a job thread did not stop"


# ---- progress & history ----------------------------------------------------------------------------------------


def test_progress_order_and_history(manager):
    seen_steps = []

    def fn(progress, should_stop):
        for i in range(1, 51):
            progress(Progress(i, 50, {"v": float(i), "w": -float(i)}, message=f"at {i}"))
            time.sleep(0.001)
        return "ok"

    h = manager.submit(FunctionJob("ordered", fn))
    while not h.finished:  # concurrent snapshots never see the step go backwards
        seen_steps.append(h.snapshot().step)
    assert h.wait(5)
    assert seen_steps == sorted(seen_steps)
    s = h.snapshot()
    assert s.status is JobStatus.DONE and h.result == "ok"
    assert (s.step, s.total, s.fraction) == (50, 50, 1.0)
    xs, ys = s.history["v"]
    assert xs == tuple(float(i) for i in range(1, 51))
    assert ys == xs
    assert s.history["w"][1] == tuple(-x for x in xs)
    assert dict(s.metrics) == {"v": 50.0, "w": -50.0}
    assert s.message == "at 50"
    assert s.history_version == 50
    assert s.eta == 0.0


def test_history_is_capped_but_spans_the_run():
    m = JobManager(max_points=100)

    def fn(progress, should_stop):
        for i in range(1, 5001):
            progress(Progress(i, 5000, {"v": float(i)}))

    h = m.submit(FunctionJob("long", fn))
    assert h.wait(10)
    xs, ys = h.snapshot().history["v"]
    assert 50 <= len(xs) <= 101
    assert all(b > a for a, b in zip(xs, xs[1:]))
    assert xs[0] <= 50 and xs[-1] >= 4950  # the partial last group is shown, so the curve reaches the end
    assert np.allclose(xs, ys)  # pairs are averaged in x and y alike, so y=x survives decimation
    assert m.shutdown(1)


# ---- ETA -----------------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_eta_constant_rate_is_exact_with_fake_clock():
    clock = FakeClock()
    m = JobManager(clock=clock)
    go: queue.Queue = queue.Queue()
    done: queue.Queue = queue.Queue()

    def fn(progress, should_stop):  # lock-step with the test: one step per command, 0.5 s of fake time each
        for i in range(1, 21):
            go.get(timeout=5)
            clock.t += 0.5
            progress(Progress(i, 20, {"loss": 1.0 / i}))
            done.put(i)

    h = m.submit(FunctionJob("steady", fn))
    etas = []
    for i in range(1, 21):
        go.put(i)
        assert done.get(timeout=5) == i
        s = h.snapshot()
        etas.append(s.eta)
        if i == 1:
            assert s.eta is None  # no rate yet after a single report
        elif i < 20:
            assert s.eta == pytest.approx((20 - i) / 2.0)  # 2 steps/s
            assert s.steps_per_sec == pytest.approx(2.0)
    # between reports the ETA counts down with the clock
    assert h.wait(5)
    assert h.snapshot().eta == 0.0
    tail = etas[1:-1]
    assert all(b < a for a, b in zip(tail, tail[1:]))
    assert m.shutdown(1)


def test_eta_counts_down_between_reports():
    clock = FakeClock()
    m = JobManager(clock=clock)
    release = threading.Event()
    reported = threading.Event()

    def fn(progress, should_stop):
        for i in range(1, 5):
            clock.t += 1.0
            progress(Progress(i, 10))
        reported.set()
        release.wait(5)

    h = m.submit(FunctionJob("pause", fn))
    assert reported.wait(5)
    e0 = h.snapshot().eta
    assert e0 == pytest.approx(6.0)  # 1 step/s, 6 steps left
    clock.t += 2.5
    assert h.snapshot().eta == pytest.approx(3.5)
    clock.t += 100
    assert h.snapshot().eta == 0.0  # never negative
    release.set()
    assert h.wait(5)
    assert m.shutdown(1)


def test_eta_real_time_decreases(manager):
    h = manager.submit(TickJob(steps=40, delay=0.02))
    samples = {}
    while not h.finished:
        s = h.snapshot()
        for mark in (10, 30):
            if s.step >= mark and mark not in samples and s.eta is not None:
                samples[mark] = (s.step, s.eta)
        time.sleep(0.002)
    assert h.wait(5)
    assert set(samples) == {10, 30}
    (s10, e10), (_, e30) = samples[10], samples[30]
    assert e30 < e10
    # ~20 ms/step: generous bounds only (CI machines are slow and noisy)
    assert 0.05 < e10 < 10 * (40 - s10) * 0.02 + 0.5


def test_format_duration():
    assert format_duration(None) == "--:--"
    assert format_duration(float("inf")) == "--:--"
    assert format_duration(0) == "00:00"
    assert format_duration(65.4) == "01:05"
    assert format_duration(3725) == "1:02:05"


# ---- cancel --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raise_on_cancel", [False, True])
def test_cancel_returns_within_one_second(manager, raise_on_cancel):
    h = manager.submit(TickJob(steps=100_000, delay=0.01, poll=0.01, raise_on_cancel=raise_on_cancel))
    assert wait_until(lambda: h.snapshot().step >= 2)
    t0 = time.monotonic()
    h.cancel()
    assert h.snapshot().stop_requested
    assert h.wait(1.0)
    elapsed = time.monotonic() - t0
    assert elapsed < 1.0
    s = h.snapshot()
    assert s.status is JobStatus.CANCELLED
    assert s.error is None
    assert 2 <= s.step < 100_000
    assert manager.active_count == 0


def test_job_cancelled_exception_without_stop_request_counts_as_cancelled(manager):
    def fn(progress, should_stop):
        progress(Progress(1, 3))
        raise JobCancelled("user aborted in the job itself")

    h = manager.submit(FunctionJob("self-cancel", fn))
    assert h.wait(5)
    assert h.status is JobStatus.CANCELLED and h.snapshot().error is None


def test_queued_jobs_wait_for_a_slot_and_can_be_cancelled_before_starting():
    m = JobManager(max_concurrent=1)
    a = m.submit(TickJob(name="a", steps=100_000, delay=0.01))
    b = m.submit(TickJob(name="b", steps=3, delay=0.0))
    assert wait_until(lambda: a.status is JobStatus.RUNNING)
    time.sleep(0.05)
    assert b.status is JobStatus.QUEUED
    assert m.active_count == 2
    b.cancel()
    assert b.wait(1.0)
    sb = b.snapshot()
    assert sb.status is JobStatus.CANCELLED and sb.started_at is None and sb.step == 0
    c = m.submit(TickJob(name="c", steps=3, delay=0.0))
    a.cancel()
    assert c.wait(5) and c.status is JobStatus.DONE and c.result == 3
    assert m.shutdown(2)


# ---- failure -------------------------------------------------------------------------------------------------


def test_exception_marks_failed_and_manager_keeps_working(manager):
    h = manager.submit(FailingJob(steps=10, fail_at=3))
    assert h.wait(5)
    s = h.snapshot()
    assert s.status is JobStatus.FAILED
    assert s.error == "RuntimeError: demo failure at step 3"
    assert "\n" not in s.error
    assert "_explode" in s.traceback and "Traceback" in s.traceback
    assert s.step == 2 and h.result is None
    ok = manager.submit(TickJob(steps=5, delay=0.0))
    assert ok.wait(5)
    assert ok.status is JobStatus.DONE and ok.result == 5


def test_multiline_exception_is_one_error_line(manager):
    def fn(progress, should_stop):
        raise ValueError("first line\nsecond line\n\tthird")

    h = manager.submit(FunctionJob("multi", fn))
    assert h.wait(5)
    assert h.snapshot().error == "ValueError: first line second line third"
    assert error_line(KeyError()) == "KeyError"


def test_bad_preview_fails_the_job_not_the_manager(manager):
    def fn(progress, should_stop):
        progress(Progress(1, 2, preview=np.array([["not", "a"], ["float", "image"]])))

    h = manager.submit(FunctionJob("bad preview", fn))
    assert h.wait(5)
    assert h.status is JobStatus.FAILED and h.snapshot().error.startswith("ValueError")


def test_finished_callbacks_run_once_per_job_and_errors_are_contained():
    calls = []
    lock = threading.Lock()

    def record(handle):
        with lock:
            calls.append((handle.id, handle.status))

    m = JobManager(on_finished=record)
    m.add_finished_callback(lambda handle: 1 / 0)  # must not break the worker or the other callback
    hs = [m.submit(TickJob(steps=2, delay=0.0)), m.submit(FailingJob(fail_at=1))]
    assert m.shutdown(5)
    assert wait_until(lambda: len(calls) == 2)
    assert sorted(calls, key=lambda c: c[0]) == [(hs[0].id, JobStatus.DONE), (hs[1].id, JobStatus.FAILED)]


# ---- many jobs, manager API ------------------------------------------------------------------------------------


def test_many_concurrent_jobs(manager):
    hs = [manager.submit(TickJob(name=f"t{i}", steps=20 + i, delay=0.002)) for i in range(24)]
    assert len({h.id for h in hs}) == 24
    assert all(h.wait(10) for h in hs)
    assert [h.result for h in hs] == [20 + i for i in range(24)]
    assert all(h.status is JobStatus.DONE for h in hs)
    assert [h.id for h in manager.jobs] == [h.id for h in hs]
    assert manager.active_count == 0
    for h in hs:
        xs, _ = h.snapshot().history["value"]
        assert xs == tuple(float(i) for i in range(1, len(xs) + 1)) and len(xs) == h.result


def test_clear_finished_cancel_all_and_shutdown():
    m = JobManager()
    quick = m.submit(TickJob(steps=1, delay=0.0))
    slow = [m.submit(TickJob(steps=100_000, delay=0.01)) for _ in range(3)]
    assert quick.wait(5)
    assert m.clear_finished() == [quick.id]
    assert [h.id for h in m.jobs] == [h.id for h in slow]
    assert m.get(quick.id) is None and m.get(slow[0].id) is slow[0]
    t0 = time.monotonic()
    assert m.shutdown(timeout=2.0)
    assert time.monotonic() - t0 < 2.0
    assert all(h.status is JobStatus.CANCELLED for h in slow)
    with pytest.raises(RuntimeError, match="shut down"):
        m.submit(TickJob())
    with pytest.raises(TypeError):
        JobManager().submit(object())


def test_only_the_newest_finished_jobs_are_kept_and_running_ones_never_go():
    m = JobManager(keep_finished=2)
    slow = m.submit(TickJob(steps=100_000, delay=0.01))
    done = []
    for _ in range(5):
        done.append(m.submit(TickJob(steps=1, delay=0.0)))
        assert done[-1].wait(5)
    deadline = time.monotonic() + 5   # the worker forgets old ones right after the job ends
    while len(m.jobs) > 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [h.id for h in m.jobs] == [slow.id, done[-2].id, done[-1].id]
    assert m.shutdown(timeout=2.0)


# ---- snapshots ---------------------------------------------------------------------------------------------------


def test_snapshot_is_immutable_and_isolated_from_the_job(manager):
    buf = np.zeros((4, 5, 3), dtype=np.float64)
    reported = threading.Event()
    release = threading.Event()

    def fn(progress, should_stop):
        buf[:] = 0.25
        progress(Progress(1, 2, {"loss": 0.5}, preview=buf))
        buf[:] = 0.75  # the job reuses its buffer: the published preview must not change
        reported.set()
        release.wait(5)
        progress(Progress(2, 2, {"loss": 0.25}))

    h = manager.submit(FunctionJob("imm", fn))
    assert reported.wait(5)
    s = h.snapshot()
    assert s.preview.dtype == np.float32 and s.preview.shape == (4, 5, 3)
    assert np.all(s.preview == 0.25)
    assert s.preview_version == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.step = 99  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.metrics["loss"] = 1.0  # type: ignore[index]
    with pytest.raises(TypeError):
        s.history["loss"] = ((), ())  # type: ignore[index]
    with pytest.raises(ValueError):
        s.preview[0, 0, 0] = 1.0
    assert isinstance(s.history["loss"][0], tuple)
    release.set()
    assert h.wait(5)
    s2 = h.snapshot()
    # the old snapshot did not move when the job went on
    assert (s.step, dict(s.metrics), s.history["loss"][1]) == (1, {"loss": 0.5}, (0.5,))
    assert (s2.step, s2.history["loss"][1], s2.preview_version) == (2, (0.5, 0.25), 1)


def test_snapshot_fields_are_consistent_under_concurrency(manager):
    def fn(progress, should_stop):
        for i in range(1, 1501):  # below the history cap, so every point is kept
            progress(Progress(i, 1500, {"v": float(i)}))
            if i % 20 == 0:
                time.sleep(0.0005)  # let the reader interleave even on a loaded machine

    h = manager.submit(FunctionJob("consistent", fn))
    checked = 0
    while not h.finished:
        s = h.snapshot()
        if s.step:
            xs, ys = s.history["v"]
            assert s.metrics["v"] == float(s.step) == xs[-1] == ys[-1]
            assert len(xs) == s.step == s.history_version
            checked += 1
    assert h.wait(5) and checked > 0
    s = h.snapshot()
    assert len(s.history["v"][0]) == s.step == 1500


# ---- the real demo job ---------------------------------------------------------------------------------------------


def test_fit_image_demo_job_learns(manager):
    h = manager.submit(FitImageJob(steps=40, size=24, preview_every=10))
    assert h.wait(30)
    s = h.snapshot()
    assert s.status is JobStatus.DONE, s.error
    psnr = s.history["psnr"][1]
    assert psnr[-1] > psnr[0] + 3.0  # it really fits
    assert s.preview.shape == (24, 24, 3) and s.preview_version == 5  # step 1, 10, 20, 30, 40
    assert h.result["steps"] == 40


# ---- Dear PyGui panel (under Xvfb) -------------------------------------------------------------------------------


@pytest.mark.gui
def test_jobs_panel_in_the_real_studio(studio):
    import dearpygui.dearpygui as dpg
    from guitools import press, run_until

    manager, panel = studio.jobs, studio.jobs_panel

    def frames_until(pred, timeout=10.0):
        return run_until(studio, pred, timeout)

    h = manager.submit(TickJob(name="watch me", steps=1000, delay=0.01, preview_size=16))
    assert frames_until(lambda: h.id in panel.row_ids and h.snapshot().step >= 3)
    tags = panel.row_tags(h.id)
    assert frames_until(lambda: dpg.get_value(tags["progress"]) > 0)
    first = dpg.get_value(tags["progress"])
    assert frames_until(lambda: dpg.get_value(panel.row_tags(h.id)["progress"]) > first + 0.01)
    tags = panel.row_tags(h.id)
    overlay = dpg.get_item_configuration(tags["progress"])["overlay"]
    assert re.fullmatch(r"\d+/1000 · ETA \d\d:\d\d", overlay), overlay
    xs, ys = dpg.get_value(tags["series"]["value"])[:2]
    assert len(xs) > 0 and len(xs) == len(ys)
    assert tags["texture"] is not None and tags["texture_size"] == (16, 16)
    assert dpg.get_item_configuration(tags["image"])["texture_tag"] == tags["texture"]
    assert dpg.get_value(tags["status"]) == "running"

    h.cancel()
    assert frames_until(lambda: dpg.get_value(tags["status"]) == "cancelled")
    assert h.status is JobStatus.CANCELLED
    assert "[cancelled]" in dpg.get_item_label(tags["header"])
    assert not dpg.get_item_configuration(tags["cancel"])["show"]

    # the Cancel button's callback is wired to the handle
    h2 = manager.submit(TickJob(name="button", steps=1000, delay=0.01))
    assert frames_until(lambda: h2.id in panel.row_ids)
    cancel = panel.row_tags(h2.id)["cancel"]
    press(cancel)  # as Dear PyGui calls it
    assert h2.wait(1.0) and h2.status is JobStatus.CANCELLED

    # a failing job shows a red one-line error and a collapsed traceback
    h3 = manager.submit(FailingJob(fail_at=2))
    assert frames_until(lambda: h3.id in panel.row_ids and h3.finished)
    frames_until(lambda: False, timeout=0.05)
    t3 = panel.row_tags(h3.id)
    assert dpg.get_value(t3["error"]) == "RuntimeError: demo failure at step 2"
    assert dpg.get_item_configuration(t3["error"])["show"]
    assert dpg.get_item_configuration(t3["traceback_node"])["show"]
    assert "_explode" in dpg.get_value(t3["traceback"])

    # "Clear finished" drops the rows and their items on the next update
    clear = panel.controls["clear_finished"]
    press(clear)
    frames_until(lambda: False, timeout=0.05)
    assert h3.id not in panel.row_ids and h.id not in panel.row_ids
    assert not dpg.does_item_exist(tags["header"]) and not dpg.does_item_exist(tags["texture"])


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="per-thread niceness is Linux-only")
def test_job_threads_run_at_lower_priority_than_the_ui():
    seen = {}

    def body(progress, should_stop):
        tid = threading.get_native_id()
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, tid)
        return 1

    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    mgr = JobManager(nice=5)
    h = mgr.submit(FunctionJob("prio", body))
    assert h.wait(5) and h.result == 1
    assert seen["nice"] == min(19, base + 5)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # the caller is untouched
    mgr.shutdown()
