"""The sampler-probe panel: one plot of a pixel's ray through the proposal sampler, knobs that re-run it, and its
per-ray numbers. It only copies :class:`methods.nerf360.probe.ProbeSeries` arrays into Dear PyGui series."""
from __future__ import annotations

from typing import Callable

import dearpygui.dearpygui as dpg
import numpy as np

from app.widgets.options_form import HELP_COLOR
from methods.nerf360.probe import ProbeKnobs, ProbeResult, ProbeSeries

# series colours (RGBA 0-255): proposals blue/cyan, what was drawn green/olive, bounds orange, violation red
COLORS = {
    "proposal 1": (90, 140, 255, 255), "proposal 2": (80, 220, 255, 255),
    "drawn for round 2": (120, 220, 120, 255), "drawn for NeRF": (200, 220, 90, 255),
    "bound 1": (255, 170, 60, 255), "bound 2": (255, 120, 40, 255), "NeRF weights": (235, 235, 235, 255),
    "violation 1": (255, 60, 60, 110), "violation 2": (255, 30, 90, 140),
    "round 1 samples": (90, 140, 255, 255), "round 2 samples": (80, 220, 255, 255),
    "NeRF samples": (235, 235, 235, 255),
}


def _theme(kind: str, color: tuple[int, int, int, int]) -> int | str:
    with dpg.theme() as theme:
        component = {"line": dpg.mvLineSeries, "shade": dpg.mvShadeSeries, "tick": dpg.mvScatterSeries}[kind]
        with dpg.theme_component(component):
            if kind == "line":
                dpg.add_theme_color(dpg.mvPlotCol_Line, color, category=dpg.mvThemeCat_Plots)
                dpg.add_theme_style(dpg.mvPlotStyleVar_LineWeight, 1.6, category=dpg.mvThemeCat_Plots)
            elif kind == "shade":
                dpg.add_theme_color(dpg.mvPlotCol_Fill, color, category=dpg.mvThemeCat_Plots)
            else:
                dpg.add_theme_color(dpg.mvPlotCol_MarkerFill, color, category=dpg.mvThemeCat_Plots)
                dpg.add_theme_color(dpg.mvPlotCol_MarkerOutline, color, category=dpg.mvThemeCat_Plots)
                dpg.add_theme_style(dpg.mvPlotStyleVar_Marker, dpg.mvPlotMarker_Up, category=dpg.mvThemeCat_Plots)
                dpg.add_theme_style(dpg.mvPlotStyleVar_MarkerSize, 2.5, category=dpg.mvThemeCat_Plots)
    return theme


class SamplerProbePanel:
    """A window with the probe plot; ``on_knobs(knobs)`` is called when a slider moves (the view re-probes)."""

    BAR_SIZE = (1024, 256)

    def __init__(self, name: str, texture_registry: int | str, on_knobs: Callable[[ProbeKnobs], None],
                 defaults: tuple[int, int], pos: tuple[int, int] = (60, 60), size: tuple[int, int] = (760, 520)
                 ) -> None:
        self.name, self.on_knobs = name, on_knobs
        self.tags: dict[str, int | str] = {}
        self.series: dict[str, int | str] = {}
        self.themes: list[int | str] = []
        self.result: ProbeResult | None = None
        self.shade_names: set[str] = set()
        t, n = self.tags, name
        w, h = self.BAR_SIZE
        t["bars_texture"] = dpg.add_dynamic_texture(w, h, np.zeros(w * h * 4, np.float32), parent=texture_registry)
        with dpg.window(label="Sampler probe (click a pixel of the NeRF view)", pos=pos, width=size[0],
                        height=size[1], show=False, tag=f"{n}.window") as win:
            t["window"] = win
            t["title"] = dpg.add_text("no pixel probed yet", tag=f"{n}.title")
            t["summary"] = dpg.add_text("", wrap=size[0] - 30, tag=f"{n}.summary")
            with dpg.group(horizontal=True):
                t["dilation"] = dpg.add_slider_float(label="dilation x", default_value=1.0, min_value=0.0,
                                                     max_value=4.0, width=110, tag=f"{n}.dilation",
                                                     callback=self._changed)
                t["anneal"] = dpg.add_slider_float(label="anneal a", default_value=1.0, min_value=0.0, max_value=1.0,
                                                   width=110, tag=f"{n}.anneal", callback=self._changed)
                t["prop_samples"] = dpg.add_slider_int(label="proposal n", default_value=defaults[0], min_value=2,
                                                       max_value=256, width=110, tag=f"{n}.prop_samples",
                                                       callback=self._changed)
                t["nerf_samples"] = dpg.add_slider_int(label="NeRF n", default_value=defaults[1], min_value=2,
                                                       max_value=256, width=110, tag=f"{n}.nerf_samples",
                                                       callback=self._changed)
            with dpg.plot(width=-1, height=-42, tag=f"{n}.plot") as plot:
                t["plot"] = plot
                dpg.add_plot_legend(location=dpg.mvPlot_Location_East, outside=True)
                t["x"] = dpg.add_plot_axis(dpg.mvXAxis, label="s (ticks: metric depth t)", tag=f"{n}.x")
                t["y"] = dpg.add_plot_axis(dpg.mvYAxis, label="density w / ds", tag=f"{n}.y")
                self.series["NeRF colours"] = dpg.add_image_series(t["bars_texture"], (0.0, 0.0), (1.0, 1.0),
                                                                   label="NeRF weights (RGB)", parent=t["y"])
            dpg.add_text("Shaded: NeRF mass above a proposal round's bound (the proposal loss). Ticks below 0: "
                         "sample centres per round. Drag/scroll the plot to zoom; double-click to fit.",
                         wrap=size[0] - 30, color=HELP_COLOR)
        self._unlock_in = -1  # frames until the initial axis limits are released for the user to pan/zoom
        from app.shell import WINDOW_BG

        with dpg.theme() as opaque:  # a floating window over the views: never see-through (see app.shell)
            with dpg.theme_component(dpg.mvAll):
                dpg.add_theme_color(dpg.mvThemeCol_WindowBg, (*WINDOW_BG, 255))
        self.themes.append(opaque)
        dpg.bind_item_theme(win, opaque)

    # ----- knobs --------------------------------------------------------------------------------------------
    def knobs(self) -> ProbeKnobs:
        t = self.tags
        return ProbeKnobs(dilation_scale=float(dpg.get_value(t["dilation"])), anneal=float(dpg.get_value(t["anneal"])),
                          proposal_samples=int(dpg.get_value(t["prop_samples"])),
                          nerf_samples=int(dpg.get_value(t["nerf_samples"])))

    def _changed(self, *_args) -> None:
        self.on_knobs(self.knobs())

    def reset_knobs(self, defaults: tuple[int, int]) -> None:
        t = self.tags
        dpg.set_value(t["dilation"], 1.0)
        dpg.set_value(t["anneal"], 1.0)
        dpg.set_value(t["prop_samples"], defaults[0])
        dpg.set_value(t["nerf_samples"], defaults[1])

    # ----- showing a probe ----------------------------------------------------------------------------------
    def open(self) -> None:
        dpg.show_item(self.tags["window"])
        dpg.focus_item(self.tags["window"])

    def covers(self, x: float, y: float) -> bool:
        """Is viewport point (x, y) on the probe window? It floats over the views, so a click there is not theirs.
        (Geometric: Dear PyGui's window hover state is false over the window's plot, a child.)"""
        if not self.visible:
            return False
        x0, y0 = dpg.get_item_pos(self.tags["window"])
        w, h = dpg.get_item_rect_size(self.tags["window"])
        return x0 <= x < x0 + w and y0 <= y < y0 + h

    @property
    def visible(self) -> bool:
        return dpg.does_item_exist(self.tags["window"]) and dpg.is_item_shown(self.tags["window"])

    def _series(self, kind: str, name: str) -> int | str:
        tag = self.series.get(name)
        if tag is None:
            y = self.tags["y"]
            if kind == "line":
                tag = dpg.add_line_series([], [], label=name, parent=y)
            elif kind == "shade":
                tag = dpg.add_shade_series([], [], y2=[], label=name, parent=y)
                self.shade_names.add(name)
            else:
                tag = dpg.add_scatter_series([], [], label=name, parent=y)
            theme = _theme(kind, COLORS.get(name, (200, 200, 200, 255)))
            self.themes.append(theme)
            dpg.bind_item_theme(tag, theme)
            self.series[name] = tag
        return tag

    def show(self, result: ProbeResult, series: ProbeSeries) -> None:
        t = self.tags
        self.result = result
        r, g, b = (int(255 * c) for c in result.rgb)
        dpg.set_value(t["title"], f"pixel ({result.pixel[0]}, {result.pixel[1]}) · colour ({r}, {g}, {b}) · depth "
                                  f"{result.near:.3g}..{result.far:.3g}")
        dpg.set_value(t["summary"], result.summary())
        for name in [k for k in self.series if k != "NeRF colours"]:
            if name not in series.lines and name not in series.shades and name not in series.ticks:
                empty = [[], [], []] if name in self.shade_names else [[], []]
                dpg.set_value(self.series[name], empty)  # a round the model no longer has
        for name, (x, y) in series.lines.items():
            dpg.set_value(self._series("line", name), [x.tolist(), y.tolist()])
        for name, (x, hi, lo) in series.shades.items():
            dpg.set_value(self._series("shade", name), [x.tolist(), hi.tolist(), lo.tolist()])
        for name, (x, y) in series.ticks.items():
            dpg.set_value(self._series("tick", name), [x.tolist(), y.tolist()])
        dpg.set_value(t["bars_texture"], np.ascontiguousarray(series.bars, np.float32).reshape(-1))
        (x0, y0), (x1, y1) = series.bars_bounds
        dpg.configure_item(self.series["NeRF colours"], bounds_min=(x0, y0), bounds_max=(x1, y1))
        dpg.set_axis_ticks(t["x"], tuple((label, s) for label, s in series.x_ticks))
        x0, x1 = series.x_focus
        dpg.set_axis_limits(t["x"], x0, x1)
        dpg.set_axis_limits(t["y"], -0.12 * series.y_max, series.y_max)
        self._unlock_in = 2

    def tick(self) -> None:
        """Once per UI frame: two frames after a probe is shown its axis limits are released (pan/zoom freely)."""
        if self._unlock_in > 0:
            self._unlock_in -= 1
            if self._unlock_in == 0:
                dpg.set_axis_limits_auto(self.tags["x"])
                dpg.set_axis_limits_auto(self.tags["y"])

    def series_values(self) -> dict[str, list]:
        """name → the values a series holds (tests: every series of a probe is filled)."""
        return {name: dpg.get_value(tag) for name, tag in self.series.items() if name != "NeRF colours"}

    def destroy(self) -> None:
        for tag in (self.tags.get("window"), self.tags.get("bars_texture"), *self.themes):
            if tag is not None and dpg.does_item_exist(tag):
                dpg.delete_item(tag)
