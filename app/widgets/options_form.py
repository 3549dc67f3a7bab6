"""Widgets generated from an options dataclass (render/options.py): one widget per ``option(...)`` field.

Live views and the Jobs panel both use it, so a family declares its settings once, as typed data, and never writes
GUI code for them. Call :meth:`OptionsForm.build` inside a container, then :meth:`read` once per frame.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import dearpygui.dearpygui as dpg

from render.options import OptionSpec, make_options, option_specs

HELP_COLOR = (160, 160, 170)


class OptionsForm:
    def __init__(self, cls: type, prefix: str, width: int = 150) -> None:
        self.cls, self.prefix, self.width = cls, prefix, width
        self.specs: dict[str, OptionSpec] = {s.name: s for s in option_specs(cls)}
        self.tags: dict[str, int | str] = {}
        self._labels: dict[str, int | str] = {}

    # ----- building -------------------------------------------------------------------------------------------
    def build(self, parent: int | str) -> None:
        for spec in self.specs.values():
            self.tags[spec.name] = self._add(spec, parent)
            if spec.meta.help:
                with dpg.tooltip(self.tags[spec.name]):
                    dpg.add_text(spec.meta.help, wrap=320)

    def _add(self, spec: OptionSpec, parent: int | str) -> int | str:
        m, d, tag = spec.meta, spec.default, f"{self.prefix}.{spec.name}"
        if m.choices:
            items = [spec.label_of(c) for c in m.choices]
            if m.widget == "radio":
                dpg.add_text(spec.label, parent=parent)
                return dpg.add_radio_button(items, default_value=spec.label_of(d), parent=parent, tag=tag)
            return dpg.add_combo(items, label=spec.label, default_value=spec.label_of(d), parent=parent,
                                 width=self.width, tag=tag)
        if isinstance(d, bool):
            return dpg.add_checkbox(label=spec.label, default_value=d, parent=parent, tag=tag)
        if isinstance(d, int):
            kw = {k: int(v) for k, v in (("min_value", m.min), ("max_value", m.max)) if v is not None}
            if m.widget == "slider" and len(kw) == 2:
                return dpg.add_slider_int(label=spec.label, default_value=d, parent=parent, width=self.width,
                                          tag=tag, **kw)
            return dpg.add_input_int(label=spec.label, default_value=d, parent=parent, width=self.width, tag=tag,
                                     min_clamped="min_value" in kw, max_clamped="max_value" in kw, **kw)
        if isinstance(d, float):
            if m.log and m.max:
                lo = m.min if m.min else m.max * 1e-5  # a log slider needs a positive left end (0 stays valid)
                item = dpg.add_slider_float(label="", min_value=math.log10(lo), max_value=math.log10(m.max),
                                            default_value=math.log10(d), format="", width=-1, parent=parent,
                                            tag=tag)
                self._labels[spec.name] = dpg.add_text(f"{spec.label} {d:.2e}", parent=parent,
                                                       tag=f"{tag}_label")
                return item
            if m.min is not None and m.max is not None:
                return dpg.add_slider_float(label=spec.label, default_value=d, min_value=m.min, max_value=m.max,
                                            format="%.3g", parent=parent, width=self.width, tag=tag)
            return dpg.add_input_float(label=spec.label, default_value=d, parent=parent, width=self.width, tag=tag)
        return dpg.add_input_text(label=spec.label, default_value=str(d), parent=parent, width=self.width, tag=tag)

    # ----- reading / writing ----------------------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        """The widgets' current values as Python values of the options' types."""
        out: dict[str, Any] = {}
        for name, spec in self.specs.items():
            item = self.tags.get(name)
            if item is None or not dpg.does_item_exist(item):
                continue
            raw = dpg.get_value(item)
            if spec.meta.choices:
                out[name] = spec.value_of(raw)
            elif spec.meta.log and isinstance(spec.default, float):
                out[name] = float(f"{10.0 ** raw:.4g}")
                if name in self._labels:
                    dpg.set_value(self._labels[name], f"{spec.label} {out[name]:.2e}")
            elif isinstance(spec.default, float):
                out[name] = round(float(raw), 4)
            else:
                out[name] = raw
        return out

    def read(self, **internal: Any) -> Any:
        """An options instance from the widgets plus ``internal`` fields the view computes (no widget)."""
        return make_options(self.cls, {**self.values(), **internal})

    def set(self, name: str, value: Any) -> None:
        """Show ``value`` in a widget (programmatic changes, e.g. a training run's filter)."""
        spec, item = self.specs[name], self.tags[name]
        if spec.meta.choices:
            dpg.set_value(item, spec.label_of(value))
        elif spec.meta.log:
            dpg.set_value(item, math.log10(max(float(value), 1e-300)))
        else:
            dpg.set_value(item, value)

    def active(self) -> bool:
        """A slider or drag of this form is being dragged right now (the view renders previews meanwhile)."""
        return any(dpg.does_item_exist(t) and dpg.is_item_active(t) and
                   any(k in dpg.get_item_type(t) for k in ("Slider", "Drag")) for t in self.tags.values())

    def defaults(self) -> Any:
        return self.cls(**{f.name: f.default for f in dataclasses.fields(self.cls)
                           if f.default is not dataclasses.MISSING})
