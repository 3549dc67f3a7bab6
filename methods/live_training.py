"""Live training: a trainer publishes immutable snapshots of its model; views render them while it trains.

The trainer bumps a revision number after every optimisation step (cheap, no copy). A consumer asks for
:meth:`SnapshotPublisher.snapshot`, which copies the model under the trainer's lock only when the revision moved
since the last copy, and then renders that private copy without any lock — a slow render never stalls a training
step. Views decide *when* to pick up a new revision with one shared rule, :class:`FollowPolicy`.
"""
from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, runtime_checkable


@dataclass(frozen=True)
class Snapshot:
    """A private copy of a model at one revision (render it freely; never mutate it). ``info`` holds plain data
    a view may show (method name, step, dataset, …)."""

    revision: int
    model: Any
    info: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class LiveTraining(Protocol):
    """What a view may know about a running trainer: the newest revision, and a snapshot of it."""

    @property
    def revision(self) -> int: ...

    def snapshot(self) -> Snapshot: ...


class SnapshotPublisher:
    """The one implementation of :class:`LiveTraining` trainers use.

    ``model_fn()`` returns the live model (called under ``lock``), ``clone`` copies it (``model.clone()`` or a deep
    copy), ``info_fn()`` returns plain data for the snapshot. The trainer calls :meth:`bump` after each step.
    """

    def __init__(self, model_fn: Callable[[], Any], lock: threading.Lock, *,
                 clone: Callable[[Any], Any] = copy.deepcopy,
                 info_fn: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self._model_fn, self._lock, self._clone, self._info_fn = model_fn, lock, clone, info_fn
        self._revision = 1
        self._cached: Snapshot | None = None
        self._copy_lock = threading.Lock()
        self.copies = 0  # how many snapshots were actually copied (tests, benches)

    @property
    def revision(self) -> int:
        return self._revision

    def bump(self) -> None:
        """The live model changed (one more step): the next snapshot copies it again."""
        self._revision += 1

    def snapshot(self) -> Snapshot:
        with self._copy_lock:
            cached = self._cached
            if cached is not None and cached.revision == self._revision:
                return cached
            with self._lock:
                rev = self._revision
                model = self._clone(self._model_fn())
                info = dict(self._info_fn()) if self._info_fn is not None else {}
            self.copies += 1
            self._cached = Snapshot(rev, model, info)
            return self._cached


@dataclass
class FollowPolicy:
    """When a view re-renders a live model: a newer revision is taken at most every
    max(``min_period_s``, last render time / ``render_share``) seconds, so drawing the model never takes more than
    about ``render_share`` of the CPU away from training it, and a still view of a finished run costs nothing."""

    min_period_s: float = 1.0
    render_share: float = 1.0 / 3.0
    shown: int = 0
    _taken_at: float = -1e18

    def revision(self, live: LiveTraining | None, last_render_s: float | None, now: float | None = None) -> int:
        """The revision the view should request now (0 when nothing is live)."""
        if live is None:
            self.shown, self._taken_at = 0, -1e18
            return 0
        now = time.monotonic() if now is None else now
        newest = int(live.revision)
        period = max(self.min_period_s, (last_render_s or 0.0) / self.render_share)
        if newest != self.shown and (self.shown == 0 or now - self._taken_at >= period):
            self.shown, self._taken_at = newest, now
        return self.shown


class ModelSlot:
    """Source side of the contract: the model a render should draw — a static one, or the snapshot of a live
    training. A new snapshot is taken only when the request's revision changes (the view's :class:`FollowPolicy`
    decides when), so dragging a slider while a model trains re-draws the same snapshot instead of copying anew."""

    def __init__(self, model: Any = None) -> None:
        self._lock = threading.Lock()
        self._static, self._live = model, None
        self._snap: Snapshot | None = None
        self._snap_for: int | None = None

    def show(self, model: Any) -> None:
        with self._lock:
            self._static, self._live, self._snap, self._snap_for = model, None, None, None

    def follow(self, live: LiveTraining) -> Snapshot:
        """Follow a running trainer; returns its current snapshot (for what the source needs at once)."""
        snap = live.snapshot()
        with self._lock:
            self._static, self._live, self._snap, self._snap_for = None, live, snap, None
        return snap

    @property
    def live(self) -> LiveTraining | None:
        return self._live

    def get(self, revision: int = 0) -> tuple[Any, Mapping[str, Any]]:
        """(model, info) to draw for a request carrying ``revision``."""
        with self._lock:
            live, snap = self._live, self._snap
            if live is None:
                return self._static, {}
            if snap is None or (revision and revision != self._snap_for):
                snap = self._snap = live.snapshot()
                self._snap_for = revision
            return snap.model, snap.info
