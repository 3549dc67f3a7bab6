"""View registry: every module in this package that defines a ``@register_view`` class adds a view.

New methods add a file here; the shell discovers it (``discover_views``) without being edited.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.views.base import View

VIEW_REGISTRY: dict[str, type["View"]] = {}
VIEW_IMPORT_ERRORS: dict[str, str] = {}  # module -> one-line reason; shown by the shell, never fatal


def register_view(cls: type["View"]) -> type["View"]:
    if cls.name in VIEW_REGISTRY and VIEW_REGISTRY[cls.name] is not cls:
        raise ValueError(f"two views are registered as '{cls.name}'")
    VIEW_REGISTRY[cls.name] = cls
    return cls


def discover_views() -> dict[str, type["View"]]:
    """Import every module of this package once; returns the registry sorted by each view's ``order``."""
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        try:
            importlib.import_module(f"{__name__}.{info.name}")
        except Exception as e:  # noqa: BLE001 - one broken view must not keep the studio from opening
            VIEW_IMPORT_ERRORS[info.name] = f"{type(e).__name__}: {e}"
    return dict(sorted(VIEW_REGISTRY.items(), key=lambda kv: (kv[1].order, kv[0])))
