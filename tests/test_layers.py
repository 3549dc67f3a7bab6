"""Layering: every module under methods/, render/ and assets/ imports with the GUI unavailable.

The studio's contract is that everything below ``app`` runs headless (CLI, benchmarks, tests on a machine with no
display and no dearpygui). A module-level ``import app…`` or ``import dearpygui`` anywhere below would break that
silently on a developer's machine, where both are installed, so this test imports each module in a fresh
interpreter in which both are blocked and any attempt to import them is recorded, even if the module catches it.
"""
from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("methods", "render", "assets")
BLOCKED = ("app", "dearpygui")
# module -> the optional package it needs; skipped only while that package is absent (e.g. no CUDA machine)
OPTIONAL = {"render.splat.cuda_backend": "cupy"}

_CHILD = r"""
import importlib, importlib.util, json, sys, traceback
blocked, attempts = tuple(sys.argv[1].split(",")), []

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            attempts.append((current, name))
            raise ImportError(f"{name} is blocked: layers below app must not import the GUI")
        return None

sys.meta_path.insert(0, Block())
current = "<guard check>"
try:
    import app  # noqa: F401
    guard_ok = False
except ImportError:
    guard_ok = True
attempts.clear()
failures, skipped, optional = {}, [], json.loads(sys.argv[2])
for current in json.loads(sys.argv[3]):
    need = optional.get(current)
    if need and importlib.util.find_spec(need) is None:
        skipped.append(current)
        continue
    try:
        importlib.import_module(current)
    except BaseException as e:
        failures[current] = traceback.format_exception_only(type(e), e)[-1].strip()
print(json.dumps({"guard_ok": guard_ok, "failures": failures, "skipped": skipped,
                  "attempts": attempts}))
"""


def _modules() -> list[str]:
    """Every module and package under the layers, found on disk without importing anything."""
    names: list[str] = []

    def walk(folder: Path, prefix: str) -> None:
        for info in pkgutil.iter_modules([str(folder)]):
            name = f"{prefix}.{info.name}"
            names.append(name)
            if info.ispkg:
                walk(folder / info.name, name)

    for pkg in LAYERS:
        names.append(pkg)
        walk(ROOT / pkg, pkg)
    return names


def test_every_module_below_app_imports_without_the_gui():
    modules = _modules()
    # the walk must see the whole tree, including the modules other families plug in through
    assert {"methods.metrics", "methods.field", "methods.gaussians.model", "render.tensors", "render.splat.api",
            "assets.cache", "assets.images"} <= set(modules)
    assert any(m.endswith(".plugin") for m in modules)
    proc = subprocess.run([sys.executable, "-c", _CHILD, ",".join(BLOCKED), json.dumps(OPTIONAL),
                           json.dumps(modules)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["guard_ok"], "the import blocker did not block `import app`; the test would prove nothing"
    assert set(result["skipped"]) <= set(OPTIONAL)
    assert not result["attempts"], f"GUI imported below app (module, import): {result['attempts']}"
    assert not result["failures"], "modules that do not import headless:\n" + "\n".join(
        f"  {m}: {err}" for m, err in result["failures"].items())
