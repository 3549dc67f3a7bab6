"""Runs Jobs in background threads and keeps their state where the UI thread can read it safely.

No Dear PyGui here: the manager is plain threading so it can be tested (and used by the CLI) without a display.
Workers only ever write into a :class:`JobHandle` under its lock; the UI calls :meth:`JobHandle.snapshot` once per
frame and draws from that immutable copy, so it never holds a lock while calling into Dear PyGui and a slow or
crashing job can never stall or kill the UI.
"""
from __future__ import annotations

import enum
import itertools
import logging
import math
import os
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from app.memory import release_freed_memory
from methods.jobs import Job, JobCancelled, Progress

log = logging.getLogger(__name__)

__all__ = ["JobStatus", "JobSnapshot", "JobHandle", "JobManager", "format_duration", "error_line"]


class JobStatus(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.CANCELLED, JobStatus.FAILED)


def error_line(exc: BaseException, limit: int = 300) -> str:
    """``ExceptionType: message`` squeezed onto one line, for the red error label and the CLI."""
    msg = " ".join(str(exc).split())
    line = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def format_duration(seconds: float | None) -> str:
    """``mm:ss`` (or ``h:mm:ss`` past an hour); ``--:--`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


class _Series:
    """A capped metric history: past ``max_points`` it halves itself by averaging neighbour pairs and from then on
    averages each run of ``stride`` new points into one, so the curve keeps uniform density over the whole run at a
    bounded cost to draw and to copy."""

    __slots__ = ("xs", "ys", "max_points", "stride", "_px", "_py", "_pn", "_frozen")

    def __init__(self, max_points: int) -> None:
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.max_points = max(4, int(max_points))
        self.stride = 1
        self._px = self._py = 0.0
        self._pn = 0
        self._frozen: tuple[tuple[float, ...], tuple[float, ...]] | None = None

    def add(self, x: float, y: float) -> None:
        self._frozen = None
        self._px += x
        self._py += y
        self._pn += 1
        if self._pn < self.stride:
            return
        self.xs.append(self._px / self._pn)
        self.ys.append(self._py / self._pn)
        self._px = self._py = 0.0
        self._pn = 0
        if len(self.xs) > self.max_points:
            n = len(self.xs) // 2 * 2
            tail_x, tail_y = self.xs[n:], self.ys[n:]
            self.xs = [(self.xs[i] + self.xs[i + 1]) / 2 for i in range(0, n, 2)] + tail_x
            self.ys = [(self.ys[i] + self.ys[i + 1]) / 2 for i in range(0, n, 2)] + tail_y
            self.stride *= 2

    def frozen(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Points as tuples, the partial group included so the curve always reaches the latest step. Cached so
        idle frames don't copy thousands of points."""
        if self._frozen is None:
            xs, ys = tuple(self.xs), tuple(self.ys)
            if self._pn:
                xs += (self._px / self._pn,)
                ys += (self._py / self._pn,)
            self._frozen = (xs, ys)
        return self._frozen


@dataclass(frozen=True)
class JobSnapshot:
    """Plain, immutable view of a job at one instant, consistent across fields (taken under the handle's lock).

    ``history`` maps metric name → (steps, values) tuples; ``preview`` is a read-only float32 array (or None).
    """

    id: int
    name: str
    status: JobStatus
    step: int
    total: int
    message: str
    metrics: Mapping[str, float]
    history: Mapping[str, tuple[tuple[float, ...], tuple[float, ...]]]
    history_version: int
    preview: np.ndarray | None
    preview_version: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    elapsed: float
    eta: float | None
    steps_per_sec: float | None
    stop_requested: bool
    error: str | None
    traceback: str | None

    @property
    def fraction(self) -> float:
        """Progress in [0, 1] (0 when the total is unknown)."""
        return min(1.0, max(0.0, self.step / self.total)) if self.total > 0 else 0.0

    @property
    def finished(self) -> bool:
        return self.status.finished


class JobHandle:
    """Thread-safe state of one submitted job; the worker writes it, anyone may read it via :meth:`snapshot`."""

    #: time constant (s) of the exponential smoothing of the step rate used for the ETA
    RATE_TAU = 3.0
    #: minimum interval (s) between rate samples, so sub-millisecond steps don't make the rate noisy
    RATE_SAMPLE = 0.1

    def __init__(self, job: Job, job_id: int, *, max_points: int = 2000, clock: Callable[[], float] = time.monotonic,
                 nice: int = 0):
        self.job = job
        self._nice = nice
        self.id = job_id
        self.name = str(getattr(job, "name", type(job).__name__))
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._max_points = max_points
        self._status = JobStatus.QUEUED
        self._step = 0
        self._total = 0
        self._message = ""
        self._metrics: dict[str, float] = {}
        self._series: dict[str, _Series] = {}
        self._history_version = 0
        self._preview: np.ndarray | None = None
        self._preview_version = 0
        self._created = clock()
        self._started: float | None = None
        self._finished: float | None = None
        self._error: str | None = None
        self._traceback: str | None = None
        self._result: Any = None
        # ETA state
        self._rate: float | None = None
        self._ref_t: float | None = None
        self._ref_step = 0
        self._first_t: float | None = None
        self._first_step = 0
        self._last_t: float | None = None
        self.thread: threading.Thread | None = None

    # ---- control -------------------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the job to stop (cooperative: it sees ``should_stop()`` turn true). Safe from any thread."""
        self._stop.set()

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job finished; True if it did within ``timeout``."""
        return self._done.wait(timeout)

    # ---- read side -----------------------------------------------------------------------------------------
    @property
    def status(self) -> JobStatus:
        with self._lock:
            return self._status

    @property
    def result(self) -> Any:
        """What ``job.run`` returned (None until done, or when it failed)."""
        with self._lock:
            return self._result

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def snapshot(self) -> JobSnapshot:
        """An immutable, self-consistent copy for the UI thread (cheap: histories and previews are shared)."""
        with self._lock:
            now = self._clock()
            end = self._finished if self._finished is not None else now
            elapsed = (end - self._started) if self._started is not None else 0.0
            return JobSnapshot(
                id=self.id,
                name=self.name,
                status=self._status,
                step=self._step,
                total=self._total,
                message=self._message,
                metrics=MappingProxyType(dict(self._metrics)),
                history=MappingProxyType({k: s.frozen() for k, s in self._series.items()}),
                history_version=self._history_version,
                preview=self._preview,
                preview_version=self._preview_version,
                created_at=self._created,
                started_at=self._started,
                finished_at=self._finished,
                elapsed=elapsed,
                eta=self._eta_locked(now),
                steps_per_sec=self._rate_locked(),
                stop_requested=self._stop.is_set(),
                error=self._error,
                traceback=self._traceback,
            )

    def _rate_locked(self) -> float | None:
        if self._rate is not None:
            return self._rate
        if self._first_t is not None and self._last_t is not None and self._last_t > self._first_t:
            done = self._step - self._first_step
            return done / (self._last_t - self._first_t) if done > 0 else None
        return None

    def _eta_locked(self, now: float) -> float | None:
        if self._status is JobStatus.DONE:
            return 0.0
        if self._status is not JobStatus.RUNNING or self._total <= 0:
            return None
        rate = self._rate_locked()
        if not rate or rate <= 0:
            return None
        remaining = max(0, self._total - self._step) / rate
        # count down smoothly between reports, but never below zero
        since = now - self._last_t if self._last_t is not None else 0.0
        return max(0.0, remaining - max(0.0, since))

    # ---- write side (worker thread) ------------------------------------------------------------------------
    def _on_progress(self, p: Progress) -> None:
        preview = None
        if p.preview is not None:  # convert outside the lock; the job may reuse its buffer, so always copy
            preview = np.array(p.preview, dtype=np.float32, copy=True)
            preview.setflags(write=False)
        now = self._clock()
        with self._lock:
            if self._status.finished:
                return
            step, total = int(p.step), int(p.total)
            self._total = total
            self._update_rate_locked(now, step)
            self._step = step
            self._last_t = now
            if p.message:
                self._message = p.message
            if p.metrics:
                for k, v in p.metrics.items():
                    v = float(v)
                    self._metrics[k] = v
                    series = self._series.get(k)
                    if series is None:
                        series = self._series[k] = _Series(self._max_points)
                    series.add(float(step), v)
                self._history_version += 1
            if preview is not None:
                self._preview = preview
                self._preview_version += 1

    def _update_rate_locked(self, now: float, step: int) -> None:
        if self._first_t is None or step < self._ref_step:  # first report, or the job restarted its counter
            self._first_t = self._ref_t = now
            self._first_step = self._ref_step = step
            self._rate = None
            return
        dt = now - self._ref_t
        if dt < self.RATE_SAMPLE:
            return
        inst = (step - self._ref_step) / dt
        if self._rate is None:
            self._rate = inst
        else:
            alpha = 1.0 - math.exp(-dt / self.RATE_TAU)
            self._rate += alpha * (inst - self._rate)
        self._ref_t, self._ref_step = now, step

    def _set(self, **fields: Any) -> None:
        with self._lock:
            for k, v in fields.items():
                setattr(self, "_" + k, v)

    def _run(self, gate: threading.Semaphore | None) -> None:
        """Worker body: never raises; every outcome ends up in the handle's status."""
        acquired = False
        try:
            if gate is not None:
                while not (acquired := gate.acquire(timeout=0.02)):
                    if self._stop.is_set():
                        break
            if self._stop.is_set():
                self._set(status=JobStatus.CANCELLED, finished=self._clock())
                return
            self._set(status=JobStatus.RUNNING, started=self._clock())
            lower_thread_priority(self._nice)
            try:
                result = self.job.run(self._on_progress, self._stop.is_set)
            except JobCancelled:
                self._set(status=JobStatus.CANCELLED, finished=self._clock())
            except BaseException as e:  # noqa: BLE001 - a job must never take the app down
                self._set(
                    status=JobStatus.FAILED,
                    finished=self._clock(),
                    error=error_line(e),
                    traceback=traceback.format_exc(),
                )
                log.warning("job %s (%s) failed: %s", self.id, self.name, error_line(e))
            else:
                status = JobStatus.CANCELLED if self._stop.is_set() else JobStatus.DONE
                self._set(status=status, finished=self._clock(), result=result)
        finally:
            if acquired and gate is not None:
                gate.release()
            self.job = None  # a finished job's model, optimiser and data go; the handle keeps its record
            self._done.set()
            release_freed_memory()


FinishedCallback = Callable[[JobHandle], None]


JOB_NICE = 10  # jobs yield the CPU to the UI and render threads; they still get every idle cycle


def lower_thread_priority(nice: int) -> bool:
    """Make the calling thread nicer (Linux: niceness is per thread). A training job on a 2-core machine otherwise
    competes with the UI and the software rasterizer and doubles the UI frame time. Lowering needs no privilege."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
        return True
    except OSError:
        return False


class JobManager:
    """Starts each submitted job on its own daemon thread and keeps the handles in submission order.

    ``max_concurrent`` (None = unlimited) keeps extra jobs QUEUED until a slot frees, which matters when training
    and rendering share two CPU cores. ``on_finished`` callbacks run on the worker thread right after a job ends
    (never touch Dear PyGui from them; flag work for the main loop instead). ``keep_finished`` (None = all) bounds
    how many finished jobs are remembered, oldest forgotten first: each keeps its curves and preview, and a long
    session of started and cancelled jobs otherwise grows without end (bench/soak.py).
    """

    def __init__(
        self,
        *,
        max_concurrent: int | None = None,
        max_points: int = 2000,
        on_finished: FinishedCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
        nice: int = 0,
        keep_finished: int | None = None,
    ) -> None:
        self._keep_finished = keep_finished
        self._nice = nice  # >0: job threads run at lower OS priority than the UI (see lower_thread_priority)
        self._lock = threading.Lock()
        self._jobs: list[JobHandle] = []
        self._ids = itertools.count(1)
        self._gate = threading.Semaphore(max_concurrent) if max_concurrent else None
        self._max_points = max_points
        self._clock = clock
        self._callbacks: list[FinishedCallback] = [on_finished] if on_finished else []
        self._closed = False

    def add_finished_callback(self, fn: FinishedCallback) -> None:
        with self._lock:
            self._callbacks.append(fn)

    def submit(self, job: Job) -> JobHandle:
        """Start ``job`` in the background and return its handle immediately."""
        if not callable(getattr(job, "run", None)):
            raise TypeError(f"not a Job (no run method): {job!r}")
        with self._lock:
            if self._closed:
                raise RuntimeError("JobManager is shut down")
            handle = JobHandle(job, next(self._ids), max_points=self._max_points, clock=self._clock,
                               nice=self._nice)
            self._jobs.append(handle)

        def worker() -> None:
            handle._run(self._gate)
            with self._lock:
                self._forget_old_finished()
                callbacks = list(self._callbacks)
            for cb in callbacks:
                try:
                    cb(handle)
                except Exception:  # noqa: BLE001
                    log.exception("job-finished callback failed")

        handle.thread = threading.Thread(target=worker, name=f"job-{handle.id}-{handle.name}", daemon=True)
        handle.thread.start()
        return handle

    @property
    def jobs(self) -> list[JobHandle]:
        """A copy of the handles, oldest first."""
        with self._lock:
            return list(self._jobs)

    def get(self, job_id: int) -> JobHandle | None:
        with self._lock:
            return next((h for h in self._jobs if h.id == job_id), None)

    @property
    def active_count(self) -> int:
        """Jobs queued or running."""
        return sum(1 for h in self.jobs if not h.finished)

    def cancel_all(self) -> None:
        for h in self.jobs:
            h.cancel()

    def _forget_old_finished(self) -> None:
        """Drop the oldest finished handles beyond ``keep_finished`` (caller holds the lock)."""
        if self._keep_finished is None:
            return
        finished = [h for h in self._jobs if h.finished]
        drop = {h.id for h in finished[:max(0, len(finished) - self._keep_finished)]}
        if drop:
            self._jobs = [h for h in self._jobs if h.id not in drop]

    def clear_finished(self) -> list[int]:
        """Forget finished jobs (the Jobs panel drops their rows); returns their ids."""
        with self._lock:
            gone = [h.id for h in self._jobs if h.finished]
            self._jobs = [h for h in self._jobs if not h.finished]
        return gone

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Cancel everything, refuse new jobs and wait up to ``timeout`` s in total; True if all threads ended."""
        with self._lock:
            self._closed = True
        self.cancel_all()
        deadline = time.monotonic() + timeout
        ok = True
        for h in self.jobs:
            if h.thread is not None:
                h.thread.join(max(0.0, deadline - time.monotonic()))
                ok &= not h.thread.is_alive()
        return ok
