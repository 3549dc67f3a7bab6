"""The Splat view's editor panel: drag tools, buttons, keys and the history list. Every gesture becomes one operation
of methods/gaussians/edit.py applied to the source's edit session (a whole mip stack when one is open); the next
frame draws it (the request carries the session's revision).

Drag tools (left button; right/middle still pan): rectangle and lasso select by projected centre; sphere and box
are placed by pressing on the surface (depth from the last frame) and sized by dragging. Keys while the view has
focus: Delete, Ctrl+Z, Ctrl+Shift+Z, Ctrl+A, Ctrl+I.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import dearpygui.dearpygui as dpg
import numpy as np

from app.input import LEFT, InputFrame
from app.views.base import OPTIONS_WIDTH, one_line
from app.widgets.options_form import HELP_COLOR, OptionsForm
from methods.gaussians import edit as E
from render.options import option

if TYPE_CHECKING:
    from app.views.splat_view import SplatView

TOOLS = ("camera", "rectangle", "lasso", "sphere", "box")
OUTLINE = (255, 150, 30, 255)


@dataclass(frozen=True)
class EditControls:
    tool: str = option("camera", choices=TOOLS, label="left drag",
                       help="camera: orbit · rectangle/lasso: select by projected centre · sphere/box: press on the "
                            "surface, drag out the radius")
    mode: str = option("set", choices=E.MODES, label="selection", help="how a new selection combines with the old")
    footprint: bool = option(False, label="by footprint",
                             help="rectangle/lasso also take Gaussians whose 3-sigma footprint touches the shape, "
                                  "not only those whose centre is inside")
    floater_opacity: float = option(0.1, min=0.0, max=1.0, widget="slider", label="faint <=",
                                    help="floaters: opacity at most this ...")
    floater_scale: float = option(0.05, min=0.0, max=1.0, widget="slider", label="large >=",
                                  help="... and largest scale at least this fraction of the scene's radius")
    grow_radius: float = option(0.02, min=0.001, max=0.2, widget="slider", label="grow radius",
                                help="grow/shrink reach, as a fraction of the scene's radius")
    opacity: float = option(0.5, min=0.0, max=2.0, widget="slider", label="opacity x")
    hue: float = option(0.0, min=-180.0, max=180.0, widget="slider", label="hue")
    saturation: float = option(1.0, min=0.0, max=2.0, widget="slider", label="saturation")
    brightness: float = option(1.0, min=0.0, max=2.0, widget="slider", label="brightness")


class SplatEditPanel:
    """Turns the Splat view's widgets, drags and keys into edit operations (see the module docstring)."""

    def __init__(self, view: "SplatView") -> None:
        self.view = view
        self.form = OptionsForm(EditControls, f"{view.name}.edit", width=OPTIONS_WIDTH - 116)
        self.tags: dict[str, int | str] = {}
        self.drag: list[tuple[float, float]] | None = None  # panel pixels of the current tool drag
        self._held = False
        self._listed = (-1, -1)
        self.pending_save: str | None = None              # a save that would replace the original: confirm first
        self._edit_error = ""                             # the line the last failed edit showed

    # ----- widgets --------------------------------------------------------------------------------------------
    def build(self, parent: int | str) -> None:
        t, name = self.tags, self.view.name
        dpg.add_separator(parent=parent)
        dpg.add_text("Edit Gaussians", parent=parent)
        self.form.build(parent)
        rows = [[("All", self.select_all), ("None", lambda: self.run(E.SelectNone())),
                 ("Invert", self.invert)],
                [("Floaters", self.select_floaters), ("Grow", lambda: self.grow(E.Grow)),
                 ("Shrink", lambda: self.grow(E.Shrink))],
                [("Delete", self.delete), ("Opacity", lambda: self.run(E.ScaleOpacity(factor=self._v("opacity")))),
                 ("Recolour", self.recolour)],
                [("Undo", self.undo), ("Redo", self.redo)]]
        for row in rows:
            with dpg.group(horizontal=True, parent=parent):
                for label, cb in row:
                    t[label.lower()] = dpg.add_button(label=label, width=(OPTIONS_WIDTH - 40) // len(row),
                                                      callback=lambda s, a, u: u(), user_data=cb,
                                                      tag=f"{name}.edit.button.{label.lower()}")
        t["counts"] = dpg.add_text("", parent=parent, tag=f"{name}.edit.counts")
        t["history"] = dpg.add_listbox([], parent=parent, num_items=6, width=-1, tag=f"{name}.edit.history",
                                       callback=lambda s, a: self.go_to(a))
        dialogs = {"export": self._file_dialog((".json",), self.export_ops),
                   "save": self._file_dialog((".ply", ".json"), self.save)}
        with dpg.group(horizontal=True, parent=parent):
            for key, label in (("export", "Export ops ..."), ("save", "Save edited ...")):
                t[f"{key}_dialog"] = dialogs[key]
                dpg.add_button(label=label, width=(OPTIONS_WIDTH - 40) // 2, tag=f"{name}.edit.{key}",
                               callback=lambda s, a, u: dpg.show_item(u), user_data=dialogs[key])
        dpg.add_text("Del, Ctrl+Z / Ctrl+Shift+Z, Ctrl+A, Ctrl+I while the view has focus. A stack saves as a "
                     "mipmap.json with every level.", parent=parent, wrap=OPTIONS_WIDTH - 20, color=HELP_COLOR)
        with dpg.window(label="Replace the original?", modal=True, show=False, no_resize=True, width=360,
                        tag=f"{name}.edit.confirm") as confirm:
            t["confirm"] = confirm
            t["confirm_text"] = dpg.add_text("", wrap=340)
            with dpg.group(horizontal=True):
                dpg.add_button(label="Replace", callback=self.confirm_save, tag=f"{name}.edit.replace")
                dpg.add_button(label="Cancel", callback=self.cancel_save)
        self.overlay = dpg.add_viewport_drawlist(front=True, tag=f"{name}.edit.overlay")

    @staticmethod
    def _file_dialog(extensions: tuple[str, ...], on_path) -> int | str:
        def chosen(sender, app_data) -> None:
            path = (app_data or {}).get("file_path_name")
            if path:
                on_path(path)

        with dpg.file_dialog(show=False, width=560, height=380, callback=chosen, directory_selector=False) as dialog:
            for e in extensions:
                dpg.add_file_extension(e)
        return dialog

    def _v(self, name: str):
        return self.form.values()[name]

    # ----- operations -----------------------------------------------------------------------------------------
    def session(self) -> E.EditSession | None:
        try:
            return self.view.source.start_editing()
        except E.EditError as e:
            self.view.show_error(one_line(e))
            return None

    def run(self, *ops: E.Op) -> bool:
        """Apply ``ops`` in order; the first that cannot apply shows its line (the ones before it stay, each its
        own undo step)."""
        s = self.session()
        if s is None:
            return False
        for op in ops:
            try:
                s.apply(op)
            except E.EditError as e:
                self._show_edit_error(e)
                return False
        self._clear_edit_error()
        return True

    def _clear_edit_error(self) -> None:
        """A successful edit clears the line an earlier edit left (not a file or backend problem)."""
        if self._edit_error and self.view.error_text == self._edit_error:
            self.view.clear_error()
        self._edit_error = ""

    def _show_edit_error(self, e: Exception) -> None:
        self._edit_error = one_line(e)
        self.view.show_error(self._edit_error)

    def _scene_radius(self) -> float:
        return float(self.view.source.framing().radius)

    def select_all(self) -> bool:
        return self.run(E.SelectAll())

    def invert(self) -> bool:
        return self.run(E.Invert())

    def delete(self) -> bool:
        return self.run(E.Delete())

    def select_floaters(self) -> bool:
        r = self._scene_radius()
        return self.run(E.SelectScale(min=self._v("floater_scale") * r, mode=self._v("mode")),
                        E.SelectOpacity(max=self._v("floater_opacity"), mode="intersect"))

    def grow(self, cls: type[E.Grow]) -> bool:
        return self.run(cls(radius=self._v("grow_radius") * self._scene_radius()))

    def recolour(self) -> bool:
        return self.run(E.Recolour(hue=self._v("hue"), saturation=self._v("saturation"),
                                   brightness=self._v("brightness")))

    def go_to(self, label: str) -> None:
        """Undo or redo until the history entry ``label`` ("3. delete") is the last one applied."""
        s = self.view.source.edit
        try:
            target = int(str(label).split(".", 1)[0])
        except ValueError:
            return
        while s is not None and s.position > target and s.undo() is not None:
            pass
        while s is not None and s.position < target and s.redo() is not None:
            pass

    def undo(self) -> None:
        s = self.view.source.edit
        if s is not None:
            s.undo()

    def redo(self) -> None:
        s = self.view.source.edit
        if s is not None:
            s.redo()

    # ----- files ----------------------------------------------------------------------------------------------
    def export_ops(self, path: str) -> bool:
        from assets.cache import atomic_write_text

        s = self.view.source.edit
        if s is None or s.position == 0:
            self.view.show_error("no edits to export yet")
            return False
        try:
            atomic_write_text(path, json.dumps({"ops": s.export_ops()}))
        except OSError as e:
            self.view.show_error(f"cannot write {path}: {one_line(e)}")
            return False
        self.view.studio.notify(f"wrote {s.position} operations to {path} (main.py edit gaussians ... --ops)")
        return True

    def save(self, path: str) -> bool:
        """Save the edited model or stack to ``path``; one that would replace the opened file asks first."""
        from methods.gaussians.stack_edit import replaces_original

        original = self.view.opened_path
        if original and replaces_original(path, original):
            self.pending_save = path
            dpg.set_value(self.tags["confirm_text"], f"{Path(path).name} would replace {original}. Replace it?")
            dpg.show_item(self.tags["confirm"])
            return False
        return self._write(path)

    def confirm_save(self) -> bool:
        dpg.hide_item(self.tags["confirm"])
        path, self.pending_save = self.pending_save, None
        return self._write(path) if path else False

    def cancel_save(self) -> None:
        dpg.hide_item(self.tags["confirm"])
        self.pending_save = None

    def _write(self, path: str) -> bool:
        try:
            line = self.view.source.save_edited(path)
        except (E.EditError, OSError, ValueError) as e:
            self.view.show_error(f"cannot save {path}: {one_line(e)}")
            return False
        self.view.studio.notify(line)
        return True

    # ----- input ----------------------------------------------------------------------------------------------
    def handle_input(self, inp: InputFrame, has_focus: bool) -> InputFrame:
        """Keys and the left-button tool drag; returns the input the camera still gets (without the left button
        while a selection tool is on)."""
        typing = self.form.active() or self.view.form.active()  # Delete in a text field edits the text
        keys = has_focus and not typing
        if keys and "ctrl" in inp.keys_down:
            if "z" in inp.keys_pressed:
                self.redo() if "shift" in inp.keys_down else self.undo()
            if "a" in inp.keys_pressed:
                self.select_all()
            if "i" in inp.keys_pressed:
                self.invert()
        if keys and "delete" in inp.keys_pressed:
            self.delete()
        tool = self._v("tool")
        if tool == "camera":
            self.drag, self._held = None, LEFT in inp.buttons
            return inp
        x0, y0, _, _ = self.view.image_rect()
        p = (inp.mouse[0] - x0, inp.mouse[1] - y0)
        held = LEFT in inp.buttons
        if held and not self._held and inp.inside(self.view.image_rect()):
            self.drag = [p]
        elif held and self.drag is not None:
            if np.hypot(p[0] - self.drag[-1][0], p[1] - self.drag[-1][1]) >= 2.0:
                self.drag.append(p)
        elif not held and self.drag is not None:
            points, self.drag = self.drag, None
            self.finish(tool, points)
        self._held = held
        self.draw_outline(tool)
        return replace(inp, buttons=inp.buttons - {LEFT})

    def _camera(self):
        """The camera of the frame on screen, and the factor from panel pixels to its pixels."""
        req = self.view.uploaded_request or self.view.last_request
        pw = self.view.panel_size[0] or 1
        cam = req.camera if req is not None and req.camera is not None else \
            self.view.current_camera(*self.view.panel_size, self.view.zoom)
        return cam, cam.width / pw

    def finish(self, tool: str, points: list[tuple[float, float]]) -> bool:
        """The selection a finished drag describes (``points`` in panel pixels)."""
        s = self.session()
        if s is None:
            return False
        cam, k = self._camera()
        pts = np.asarray(points, dtype=np.float64) * k
        mode = self._v("mode")
        if tool in ("rectangle", "lasso"):
            radii = 3.0 * s.model.log_scales.detach().max(1).values.exp() if self._v("footprint") else None
            if tool == "rectangle" or len(pts) < 3:
                (ax, ay), (bx, by) = pts[0], pts[-1]
                idx = E.screen_select(s.model.means, cam, rect=(ax, ay, bx, by), radii=radii)
            else:
                idx = E.screen_select(s.model.means, cam, polygon=pts, radii=radii)
            return self.run(E.SelectIndices(indices=idx, mode=mode))
        depth = self._depth_at(pts[0], cam)
        center = cam.unproject(pts[:1], np.array([depth]))[0]
        radius = float(np.hypot(*(pts[-1] - pts[0]))) * depth / cam.fx
        c = tuple(float(v) for v in center)
        if tool == "sphere":
            return self.run(E.SelectSphere(center=c, radius=radius, mode=mode))
        return self.run(E.SelectBox(lo=tuple(v - radius for v in c), hi=tuple(v + radius for v in c), mode=mode))

    def _depth_at(self, uv: np.ndarray, cam) -> float:
        """Camera depth under pixel ``uv`` from the last frame (the surface the user pressed on); off the
        surface, the depth of the orbit target."""
        fin = self.view.worker.latest()
        depth = fin.frame.aux.get("depth") if fin is not None else None
        if depth is not None:
            h, w = depth.shape
            j, i = int(uv[0] * w / cam.width), int(uv[1] * h / cam.height)
            if 0 <= i < h and 0 <= j < w and np.isfinite(depth[i, j]) and depth[i, j] > 0:
                return float(depth[i, j])
        z = cam.world_to_camera_points(self.view.home_target()[None])[0, 2]
        return float(z) if z > cam.near else 1.0

    def draw_outline(self, tool: str) -> None:
        dpg.delete_item(self.overlay, children_only=True)
        if not self.drag:
            return
        x0, y0, _, _ = self.view.image_rect()
        pts = [(x + x0, y + y0) for x, y in self.drag]
        if tool == "lasso":
            dpg.draw_polyline(pts + [pts[0]], color=OUTLINE, thickness=2, parent=self.overlay)
        elif tool == "rectangle":
            dpg.draw_rectangle(pts[0], pts[-1], color=OUTLINE, thickness=2, parent=self.overlay)
        else:
            r = float(np.hypot(pts[-1][0] - pts[0][0], pts[-1][1] - pts[0][1]))
            if tool == "sphere":
                dpg.draw_circle(pts[0], r, color=OUTLINE, thickness=2, parent=self.overlay)
            else:
                dpg.draw_rectangle((pts[0][0] - r, pts[0][1] - r), (pts[0][0] + r, pts[0][1] + r), color=OUTLINE,
                                   thickness=2, parent=self.overlay)

    # ----- per frame ------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """The counts line and the history list, when the session changed."""
        s = self.view.source.edit
        key = (id(s), s.revision if s is not None else -1)
        if key == self._listed:
            return
        self._listed = key
        if s is None:
            dpg.configure_item(self.tags["history"], items=[])
            dpg.set_value(self.tags["counts"], "")
            return
        labels = [f"{i + 1}. " + ("" if i < s.position else "(undone) ") + lab for i, lab in enumerate(s.labels())]
        dpg.configure_item(self.tags["history"], items=labels)
        if labels:
            dpg.set_value(self.tags["history"], labels[max(s.position - 1, 0)])
        alive, sel = s.counts
        levels = getattr(s, "levels", [])
        dpg.set_value(self.tags["counts"], f"{alive:,} Gaussians, {sel:,} selected"
                      + (f" · {len(levels)} levels follow" if levels else ""))

    def destroy(self) -> None:
        if dpg.does_item_exist(self.overlay):
            dpg.delete_item(self.overlay)
