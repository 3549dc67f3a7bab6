"""Method families as plugins: one folder per family declares its CLI commands, jobs and live sources.

A family is a package ``methods/<family>/`` whose ``plugin.py`` defines ``FAMILY = Family(...)``. ``main.py``
builds its subcommands, the Jobs panel its launchers and the Views menu its views from :func:`discover_families`,
so adding a family means creating files in one folder and editing nothing shared. Families outside ``methods/``
(a user's own package, a test's temporary module) are named in the ``MIPSTUDIO_PLUGINS`` environment variable
(comma-separated module names, each defining ``FAMILY``).

Everything here is GUI-free: job options and source options are frozen dataclasses (:mod:`render.options`);
the app turns them into widgets.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

from methods.jobs import Job
from render.options import make_options

PLUGINS_ENV = "MIPSTUDIO_PLUGINS"


@dataclass(frozen=True)
class Command:
    """A headless subcommand: ``path`` ("train", "gaussians") becomes ``main.py train gaussians``; a one-element
    path is a top-level command. ``add_arguments(parser)`` declares its options (each with help; defaults are
    shown by the formatter) and ``run(args)`` returns the exit status (None = 0)."""

    path: tuple[str, ...]
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]
    description: str = ""


@dataclass(frozen=True)
class JobSpec:
    """A job the Jobs panel can start: ``options`` is a frozen dataclass of typed options (render.options.option
    fields become widgets) and ``factory(options) -> Job`` builds the job."""

    name: str
    options: type
    factory: Callable[[Any], Job]
    help: str = ""

    def make_job(self, **values: Any) -> Job:
        """Build the job from option values (checked and converted; a bad one raises a one-line ValueError)."""
        return self.factory(make_options(self.options, values))


@dataclass(frozen=True)
class SourceSpec:
    """A live source a view can show. ``factory()`` builds it (on the UI thread, when the view opens; keep it
    quick); its ``Options`` dataclass is the request's options. The app shows it in a generic view unless a view
    class is registered for ``key`` (app/views/), which then adds widgets a dataclass cannot describe."""

    key: str
    title: str
    factory: Callable[[], Any]
    is_3d: bool = False
    order: int = 100
    help: str = ""


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    commands: tuple[Command, ...] = ()
    jobs: tuple[JobSpec, ...] = ()
    sources: tuple[SourceSpec, ...] = ()
    order: int = 100


def lazy(module: str, name: str) -> Callable[..., Any]:
    """``module.name`` imported when first called: factories in plugin.py stay import-free, so ``main.py --help``
    and family discovery never load torch or GL."""
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = f"lazy({module}.{name})"
    return call


FAMILY_ERRORS: dict[str, str] = {}  # module -> one-line reason a family failed to load (shown, never fatal)


def _family_modules() -> list[str]:
    import methods

    names = []
    for info in pkgutil.iter_modules(methods.__path__):
        if info.ispkg and importlib.util.find_spec(f"methods.{info.name}.plugin") is not None:
            names.append(f"methods.{info.name}.plugin")
    names += [m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",") if m.strip()]
    return names


def discover_families() -> dict[str, Family]:
    """Every family, sorted by ``order`` then name. A module that fails to import is skipped and its reason kept
    in :data:`FAMILY_ERRORS` — one broken family must not take the CLI or the studio down."""
    found: dict[str, Family] = {}
    FAMILY_ERRORS.clear()  # this call's errors only (a fixed module stops being reported)
    for module in _family_modules():
        try:
            fam = importlib.import_module(module).FAMILY
            if not isinstance(fam, Family):
                raise TypeError(f"FAMILY is a {type(fam).__name__}, not a methods.plugin.Family")
        except Exception as e:  # noqa: BLE001
            FAMILY_ERRORS[module] = f"{type(e).__name__}: {e}"
            continue
        if fam.name in found and found[fam.name] is not fam:
            FAMILY_ERRORS[module] = f"a family named '{fam.name}' is already registered"
            continue
        found[fam.name] = fam
    return dict(sorted(found.items(), key=lambda kv: (kv[1].order, kv[0])))


def all_commands() -> list[Command]:
    return [c for fam in discover_families().values() for c in fam.commands]


def all_jobs() -> dict[str, JobSpec]:
    return {j.name: j for fam in discover_families().values() for j in fam.jobs}


def all_sources() -> dict[str, SourceSpec]:
    specs = [s for fam in discover_families().values() for s in fam.sources]
    return {s.key: s for s in sorted(specs, key=lambda s: (s.order, s.key))}
