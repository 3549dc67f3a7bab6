"""The Jobs panel: one collapsible row per job with progress, ETA, metric plots, a live preview and Cancel.

All Dear PyGui calls happen in :meth:`JobsPanel.update`, which the app calls once per frame on the main loop. It
reads one :meth:`JobHandle.snapshot` per job and touches an item only when the value it shows changed (plots when
the history version moved, the texture when the preview version moved), so an idle panel costs almost nothing.
Button callbacks only flip flags on the manager/handle; rows are created and deleted by ``update``.
"""
from __future__ import annotations

import time

from typing import Any

import dearpygui.dearpygui as dpg
import numpy as np

from render.live import to_rgba
from app.jobs_manager import JobHandle, JobManager, JobSnapshot, JobStatus, format_duration

__all__ = ["JobsPanel", "preview_to_rgba"]

STATUS_COLORS: dict[JobStatus, tuple[int, int, int]] = {
    JobStatus.QUEUED: (170, 170, 170),
    JobStatus.RUNNING: (120, 190, 255),
    JobStatus.DONE: (120, 220, 120),
    JobStatus.CANCELLED: (230, 190, 90),
    JobStatus.FAILED: (255, 90, 90),
}
ERROR_COLOR = (255, 90, 90)
PREVIEW_MAX = 192  # displayed preview size (px, longest side); the texture keeps the job's resolution
PLOT_HEIGHT = 130
HEAVY_REFRESH_S = 0.1  # plots and preview refresh at most this often while a job runs


def preview_to_rgba(image: np.ndarray) -> np.ndarray:
    """A job's preview as a raw-texture buffer: :func:`render.live.to_rgba`, sanitised (NaN → 0, clipped)."""
    return to_rgba(image, sanitize=True)


def _overlay(s: JobSnapshot) -> str:
    total = str(s.total) if s.total > 0 else "?"
    head = f"{s.step}/{total}"
    if s.status is JobStatus.RUNNING:
        return f"{head} · ETA {format_duration(s.eta)}"
    if s.status is JobStatus.QUEUED:
        return f"{head} · queued"
    return f"{head} · {s.status.value} after {format_duration(s.elapsed)}"


def _header_label(s: JobSnapshot) -> str:
    state = "cancelling" if s.stop_requested and not s.finished else s.status.value
    # '###' keeps the item's ImGui id stable while the visible label changes
    return f"#{s.id} {s.name} [{state}]###job{s.id}"


class JobsPanel:
    """Dear PyGui view of a :class:`JobManager`. Call :meth:`build` once, then :meth:`update` every frame."""

    def __init__(self, manager: JobManager) -> None:
        self.manager = manager
        self._root: int | str | None = None
        self._list: int | str | None = None
        self._summary: int | str | None = None
        self._textures: int | str | None = None
        self._rows: dict[int, dict[str, Any]] = {}
        self._summary_text = ""
        #: panel-level item ids: "cancel_all", "clear_finished", "summary" (filled by build)
        self.controls: dict[str, int | str] = {}

    # ---- construction ----------------------------------------------------------------------------------------
    def build(self, parent: int | str) -> int | str:
        """Create the panel's items under ``parent`` (a window or group); returns the panel's root group."""
        self._textures = dpg.add_texture_registry()
        with dpg.group(parent=parent) as root:
            with dpg.group(horizontal=True):
                self.controls["cancel_all"] = dpg.add_button(label="Cancel all", callback=self._on_cancel_all)
                self.controls["clear_finished"] = dpg.add_button(
                    label="Clear finished", callback=self._on_clear_finished
                )
                self._summary = self.controls["summary"] = dpg.add_text("no jobs")
            dpg.add_separator()
            self._list = dpg.add_group()
        self._root = root
        return root

    @staticmethod
    def _cancel_callback(handle: JobHandle):
        """A zero-argument callback (Dear PyGui passes only the arguments a callable declares), so a test or a
        keyboard shortcut can press the button the same way a click does."""
        return lambda: handle.cancel()

    def _on_cancel_all(self, sender: Any = None, app_data: Any = None, user_data: Any = None) -> None:
        self.manager.cancel_all()

    def _on_clear_finished(self, sender: Any = None, app_data: Any = None, user_data: Any = None) -> None:
        self.manager.clear_finished()  # rows disappear on the next update()

    def _add_row(self, handle: JobHandle, s: JobSnapshot) -> dict[str, Any]:
        row: dict[str, Any] = {
            "handle": handle,
            "plots": {},
            "x_axes": {},
            "y_axes": {},
            "series": {},
            "texture": None,
            "texture_size": None,
            "rgba": None,
            "shown": {},
        }
        with dpg.collapsing_header(label=_header_label(s), parent=self._list, default_open=True) as header:
            row["header"] = header
            with dpg.group(horizontal=True):
                row["status"] = dpg.add_text(s.status.value, color=STATUS_COLORS[s.status])
                row["cancel"] = dpg.add_button(label="Cancel", callback=self._cancel_callback(handle))
            row["progress"] = dpg.add_progress_bar(default_value=0.0, overlay=_overlay(s), width=-1)
            row["message"] = dpg.add_text("", show=False)
            row["error"] = dpg.add_text("", color=ERROR_COLOR, wrap=0, show=False)
            with dpg.tree_node(label="traceback", default_open=False, show=False) as tb_node:
                row["traceback_node"] = tb_node
                row["traceback"] = dpg.add_input_text(
                    default_value="", multiline=True, readonly=True, width=-1, height=160
                )
            row["plots_group"] = dpg.add_group()  # plots fill the panel's width; the preview sits below them
            row["image_group"] = dpg.add_group()
            row["image"] = None
            dpg.add_spacer(height=4)
        return row

    # ---- per-frame update --------------------------------------------------------------------------------------
    def update(self) -> None:
        """Sync the items with the manager; main thread only, call once per frame."""
        if self._list is None:
            return
        handles = self.manager.jobs
        alive = {h.id for h in handles}
        for job_id in [j for j in self._rows if j not in alive]:
            self._remove_row(job_id)
        active = 0
        for h in handles:
            s = h.snapshot()
            active += not s.finished
            row = self._rows.get(h.id)
            if row is None:
                row = self._rows[h.id] = self._add_row(h, s)
            self._update_row(row, s)
        summary = f"{len(handles)} job(s), {active} active" if handles else "no jobs"
        if summary != self._summary_text:
            self._summary_text = summary
            dpg.set_value(self._summary, summary)

    def _changed(self, row: dict[str, Any], key: str, value: Any) -> bool:
        if row["shown"].get(key, _MISSING) == value:
            return False
        row["shown"][key] = value
        return True

    def _update_row(self, row: dict[str, Any], s: JobSnapshot) -> None:
        label = _header_label(s)
        if self._changed(row, "label", label):
            dpg.configure_item(row["header"], label=label)
        if self._changed(row, "status", s.status):
            state = s.status.value
            dpg.set_value(row["status"], state)
            dpg.configure_item(row["status"], color=STATUS_COLORS[s.status])
            if s.finished:
                dpg.configure_item(row["cancel"], show=False)
        if self._changed(row, "fraction", s.fraction):
            dpg.set_value(row["progress"], s.fraction)
        overlay = _overlay(s)
        if self._changed(row, "overlay", overlay):
            dpg.configure_item(row["progress"], overlay=overlay)
        if self._changed(row, "message", s.message):
            dpg.set_value(row["message"], s.message)
            dpg.configure_item(row["message"], show=bool(s.message))
        if self._changed(row, "error", s.error):
            dpg.set_value(row["error"], s.error or "")
            dpg.configure_item(row["error"], show=bool(s.error))
        if self._changed(row, "traceback", s.traceback):
            dpg.set_value(row["traceback"], s.traceback or "")
            dpg.configure_item(row["traceback_node"], show=bool(s.traceback))
        # Plots and previews are the expensive items; 10 Hz is plenty for a loss curve and keeps the UI frame short.
        now = time.monotonic()
        if not s.finished and now - row.get("heavy_t", -1e9) < HEAVY_REFRESH_S:
            return
        row["heavy_t"] = now
        if self._changed(row, "history_version", s.history_version):
            self._update_plots(row, s)
        if s.preview is not None and self._changed(row, "preview_version", s.preview_version):
            self._update_preview(row, s.preview)

    def _update_plots(self, row: dict[str, Any], s: JobSnapshot) -> None:
        for name, (xs, ys) in s.history.items():
            series = row["series"].get(name)
            if series is None:
                with dpg.plot(label=name, height=PLOT_HEIGHT, width=-1, parent=row["plots_group"]) as plot:
                    x_axis = dpg.add_plot_axis(dpg.mvXAxis, label="step")
                    y_axis = dpg.add_plot_axis(dpg.mvYAxis, label=name)
                    series = dpg.add_line_series([], [], label=name, parent=y_axis)
                row["plots"][name], row["x_axes"][name], row["y_axes"][name] = plot, x_axis, y_axis
                row["series"][name] = series
            dpg.set_value(series, [list(xs), list(ys)])
            dpg.fit_axis_data(row["x_axes"][name])
            dpg.fit_axis_data(row["y_axes"][name])

    def _update_preview(self, row: dict[str, Any], preview: np.ndarray) -> None:
        rgba = preview_to_rgba(preview)
        h, w = rgba.shape[:2]
        if row["texture_size"] != (w, h):
            if row["image"] is not None:
                dpg.delete_item(row["image"])
                row["image"] = None
            if row["texture"] is not None:
                dpg.delete_item(row["texture"])
            row["texture"] = dpg.add_raw_texture(
                w, h, rgba.ravel(), format=dpg.mvFormat_Float_rgba, parent=self._textures
            )
            row["texture_size"] = (w, h)
            scale = PREVIEW_MAX / max(w, h)
            row["image"] = dpg.add_image(
                row["texture"], width=max(1, round(w * scale)), height=max(1, round(h * scale)),
                parent=row["image_group"],
            )
        else:
            dpg.set_value(row["texture"], rgba.ravel())
        row["rgba"] = rgba  # raw textures read from this buffer: keep it alive until replaced

    def _remove_row(self, job_id: int) -> None:
        row = self._rows.pop(job_id)
        dpg.delete_item(row["header"])
        if row["texture"] is not None:
            dpg.delete_item(row["texture"])

    # ---- test accessors -----------------------------------------------------------------------------------------
    def row_tags(self, job_id: int) -> dict[str, Any]:
        """Item ids of one job's row (header, status, progress, message, cancel, error, traceback, traceback_node,
        image, texture, and per-metric dicts plots/series). Raises KeyError if the row doesn't exist (yet)."""
        row = self._rows[job_id]
        out = {k: v for k, v in row.items() if k not in ("handle", "shown", "rgba")}
        for k in ("plots", "x_axes", "y_axes", "series"):
            out[k] = dict(row[k])
        return out

    @property
    def row_ids(self) -> list[int]:
        return list(self._rows)

    def destroy(self) -> None:
        """Delete the panel's items and textures (e.g. when the app closes the Jobs window)."""
        for job_id in list(self._rows):
            self._remove_row(job_id)
        for item in (self._root, self._textures):
            if item is not None and dpg.does_item_exist(item):
                dpg.delete_item(item)
        self._root = self._list = self._summary = self._textures = None


_MISSING = object()
