"""Jobs a user can start from the Jobs panel, declared as data: a factory plus option specs.

The panel builds widgets from the specs, so adding a job is one ``register_launcher(...)`` call and no GUI code.
Factories import their method lazily so the studio opens fast.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

import dearpygui.dearpygui as dpg

from methods.jobs import Job


@dataclass(frozen=True)
class Opt:
    """One job option. ``choices`` makes a combo; an int/float default makes a numeric input; a str a text box."""

    key: str
    label: str
    default: Any
    choices: tuple[Any, ...] = ()
    min: float | None = None
    max: float | None = None

    def add_widget(self, parent: int | str) -> int | str:
        if self.choices:
            return dpg.add_combo([str(c) for c in self.choices], label=self.label, default_value=str(self.default),
                                 parent=parent, width=150)
        if isinstance(self.default, bool):
            return dpg.add_checkbox(label=self.label, default_value=self.default, parent=parent)
        if isinstance(self.default, int):
            kw = {k: v for k, v in (("min_value", self.min), ("max_value", self.max)) if v is not None}
            return dpg.add_input_int(label=self.label, default_value=self.default, parent=parent, width=150,
                                     min_clamped="min_value" in kw, max_clamped="max_value" in kw, **kw)
        if isinstance(self.default, float):
            return dpg.add_input_float(label=self.label, default_value=self.default, parent=parent, width=150)
        return dpg.add_input_text(label=self.label, default_value=str(self.default), parent=parent, width=230)

    def parse(self, raw: Any) -> Any:
        if self.choices:
            return next((c for c in self.choices if str(c) == raw), self.default)
        return raw


@dataclass
class JobLauncher:
    name: str
    factory: Callable[..., Job]
    options: tuple[Opt, ...] = ()
    _widgets: dict[str, int | str] = field(default_factory=dict)

    def build(self, parent: int | str) -> None:
        self._widgets = {o.key: o.add_widget(parent) for o in self.options}

    def values(self) -> dict[str, Any]:
        vals = {o.key: o.default for o in self.options}
        for o in self.options:
            w = self._widgets.get(o.key)
            if w is not None and dpg.does_item_exist(w):
                vals[o.key] = o.parse(dpg.get_value(w))
        return vals

    def make_job(self, **overrides: Any) -> Job:
        return self.factory(**{**self.values(), **overrides})


LAUNCHERS: dict[str, JobLauncher] = {}


def register_launcher(launcher: JobLauncher) -> JobLauncher:
    LAUNCHERS[launcher.name] = launcher
    return launcher


# ----- the jobs this studio ships ---------------------------------------------------------------------------
def _dataset_job(preset: str, resolution: int, train_views: int, out_dir: str) -> Job:
    from assets.synthetic_scene import SceneSpec
    from methods.datasets.generate import GenerateSyntheticDataset, default_dataset_path

    spec = SceneSpec.preset(preset).with_(resolution=int(resolution), n_train=int(train_views))
    # Only our own cache folder is replaced; a folder the user typed is never overwritten.
    out = os.path.expanduser(out_dir.strip()) if out_dir.strip() else None
    target = out or str(default_dataset_path(preset, f"{resolution}px-{train_views}v"))
    return GenerateSyntheticDataset(out_dir=target, spec=spec, overwrite=out is None)


def _fit_job(steps: int, size: int) -> Job:
    from methods.demo_jobs import FitImageJob

    return FitImageJob(steps=int(steps), size=int(size))


def _ngssf_job(target: str, modality: str, preset: str, iterations: int) -> Job:
    from methods.ngssf.train import train_preset
    from methods.ngssf.train_job import TrainNGSSFJob

    cfg = train_preset(preset, **({"iterations": int(iterations)} if iterations else {}))
    return TrainNGSSFJob(target.strip() or "astronaut", config=cfg, modality=modality)


def discover_launchers() -> dict[str, JobLauncher]:
    if not LAUNCHERS:
        register_launcher(JobLauncher("Generate synthetic dataset", _dataset_job, (
            Opt("preset", "preset", "default", choices=("tiny", "default", "paper")),
            Opt("resolution", "resolution (px)", 128, min=8, max=1600),
            Opt("train_views", "train views", 100, min=1, max=1000),
            Opt("out_dir", "output folder", ""),
        )))
        register_launcher(JobLauncher("Fit tiny MLP to an image (demo)", _fit_job, (
            Opt("steps", "steps", 600, min=1, max=100000),
            Opt("size", "image size", 64, min=8, max=512),
        )))
        register_launcher(JobLauncher("Train NGSSF scale-space field", _ngssf_job, (
            Opt("target", "photo name / image or mesh path", "astronaut"),
            Opt("modality", "modality", "picture", choices=("picture", "texture", "mesh", "ackley")),
            Opt("preset", "preset", "cpu", choices=("cpu", "paper", "test_tiny")),
            Opt("iterations", "iterations (0 = preset)", 0, min=0, max=1000000),
        )))
    return dict(LAUNCHERS)
