"""Typed options: frozen dataclasses whose fields carry their own label, help, choices and range.

One declaration serves three consumers — the live source that reads ``request.options.<name>``, the GUI that
builds a widget per field (app/widgets/options_form.py), and the Jobs panel — so a default, a range or a choice
list is written exactly once, next to the code that uses it::

    @dataclass(frozen=True)
    class MeshOptions:
        filter: str = option("nearest", choices=FILTERS, help="texture filter")
        lighting: bool = option(True, help="Lambert lighting on the texture")

Fields declared with plain defaults (no :func:`option`) are internal: sources use them, the GUI shows no widget.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class OptionMeta:
    """How a field is shown and checked. ``choices`` makes a combo (``labels`` names them); numbers get
    ``min``/``max`` (``log`` for a log-scale slider); ``widget`` picks a style ("radio", "slider", "text")."""

    label: str = ""
    help: str = ""
    choices: tuple[Any, ...] = ()
    labels: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    log: bool = False
    widget: str = ""


def option(default: Any, *, label: str = "", help: str = "", choices: Sequence[Any] = (),
           labels: Sequence[str] = (), min: float | None = None, max: float | None = None,  # noqa: A002
           log: bool = False, widget: str = "") -> Any:
    """A dataclass field with a default and the metadata a widget needs (see :class:`OptionMeta`)."""
    if choices and default not in tuple(choices):
        raise ValueError(f"default {default!r} is not one of the choices {tuple(choices)}")
    meta = OptionMeta(label, help, tuple(choices), tuple(labels), min, max, log, widget)
    return dataclasses.field(default=default, metadata={"option": meta})


@dataclass(frozen=True)
class OptionSpec:
    """One user-facing option of an options dataclass (what a form or an argparse flag is built from)."""

    name: str
    default: Any
    meta: OptionMeta

    @property
    def label(self) -> str:
        return self.meta.label or self.name.replace("_", " ")

    def label_of(self, value: Any) -> str:
        """The text shown for a choice (its label when the option names them)."""
        if self.meta.labels and value in self.meta.choices:
            return self.meta.labels[self.meta.choices.index(value)]
        return str(value)

    def value_of(self, text: str) -> Any:
        """The choice a combo/radio label stands for (inverse of :meth:`label_of`)."""
        for c in self.meta.choices:
            if self.label_of(c) == text or str(c) == text:
                return c
        names = ", ".join(self.label_of(c) for c in self.meta.choices)
        raise ValueError(f"{self.name}: '{text}' is not one of {names}")


def option_specs(cls: type) -> tuple[OptionSpec, ...]:
    """The user-facing fields of an options dataclass, in declaration order."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not an options dataclass")
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get("option")
        if meta is not None:
            out.append(OptionSpec(f.name, f.default, meta))
    return tuple(out)


def _coerce(spec_name: str, default: Any, meta: OptionMeta | None, value: Any) -> Any:
    if meta is not None and meta.choices:
        if value in meta.choices:
            return value
        for c in meta.choices:  # a label or a string form of the choice (CLI, combos)
            if str(c) == str(value) or (meta.labels and meta.labels[meta.choices.index(c)] == value):
                return c
        raise ValueError(f"{spec_name}: {value!r} is not one of {', '.join(map(str, meta.choices))}")
    if isinstance(default, bool):
        if isinstance(value, str):
            if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(f"{spec_name}: {value!r} is not a yes/no value")
            return value.lower() in ("1", "true", "yes", "on")
        return bool(value)
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        try:
            v = type(default)(float(value)) if isinstance(default, int) else float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{spec_name}: {value!r} is not a number") from None
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{spec_name}: {value!r} is not a finite number")
        if meta is not None and meta.min is not None and v < meta.min:
            raise ValueError(f"{spec_name}: {v} is below the minimum {meta.min:g}")
        if meta is not None and meta.max is not None and v > meta.max:
            raise ValueError(f"{spec_name}: {v} is above the maximum {meta.max:g}")
        return v
    if isinstance(default, str) and not isinstance(value, str):
        return str(value)
    return value


def make_options(cls: type[T], values: Mapping[str, Any] | None = None, **changes: Any) -> T:
    """An instance of ``cls`` with ``values`` checked and converted (choices, numbers, ranges, booleans).

    Unknown names and bad values raise one-line ``ValueError``s naming the option, so a GUI form, a CLI flag and
    a test all get the same message.
    """
    vals = {**(values or {}), **changes}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(vals) - set(fields))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    out = {}
    for name, value in vals.items():
        f = fields[name]
        default = f.default if f.default is not dataclasses.MISSING else None
        out[name] = _coerce(name, default, f.metadata.get("option"), value)
    return cls(**out)
