"""Views: one per live source a method family declares (methods/plugin.py).

Every source gets the generic :class:`app.views.base.View` (widgets generated from its options dataclass) unless a
module in this package registers a custom subclass for its key with ``@register_view`` — for widgets a dataclass
cannot describe (file dialogs, training buttons). Adding a family therefore needs no file here.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.views.base import View
    from methods.plugin import SourceSpec

CUSTOM_VIEWS: dict[str, type["View"]] = {}
VIEW_IMPORT_ERRORS: dict[str, str] = {}  # module or family -> one-line reason; shown by the shell, never fatal


def register_view(cls: type["View"]) -> type["View"]:
    if cls.name in CUSTOM_VIEWS and CUSTOM_VIEWS[cls.name] is not cls:
        raise ValueError(f"two custom views are registered for source '{cls.name}'")
    CUSTOM_VIEWS[cls.name] = cls
    return cls


def discover_views() -> dict[str, tuple[type["View"], "SourceSpec"]]:
    """(view class, source spec) for every source of every family, in the families' ``order``."""
    from app.views.base import View
    from methods.plugin import FAMILY_ERRORS, all_sources

    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        try:
            importlib.import_module(f"{__name__}.{info.name}")
        except Exception as e:  # noqa: BLE001 - one broken view must not keep the studio from opening
            VIEW_IMPORT_ERRORS[info.name] = f"{type(e).__name__}: {e}"
    specs = all_sources()
    VIEW_IMPORT_ERRORS.update(FAMILY_ERRORS)
    return {key: (CUSTOM_VIEWS.get(key, View), spec) for key, spec in specs.items()}
