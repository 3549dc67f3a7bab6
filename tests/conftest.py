"""Test setup: GPU tests skip without CUDA; GUI tests get a virtual X display (Xvfb) started here if needed."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("__GLVND_DISALLOW_PATCHING", "1")
# idle OpenMP threads sleep instead of spinning: with one core busy, spinning made torch ~30x slower
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        return False


def pytest_collection_modifyitems(config, items):
    if not _cuda_available():
        skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip_gpu)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Generated assets go to a per-session cache unless the caller chose one (keeps tests hermetic)."""
    if "MIPSTUDIO_CACHE" not in os.environ:
        os.environ["MIPSTUDIO_CACHE"] = str(tmp_path_factory.mktemp("mipstudio_cache"))
    yield


@pytest.fixture(scope="session")
def x_display():
    """A usable X display: the current one, or a private Xvfb; skips only when no Xvfb binary exists."""
    from app.display import virtual_display

    try:
        ctx = virtual_display()
        display = ctx.__enter__()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    try:
        yield display
    finally:
        ctx.__exit__(None, None, None)


@pytest.fixture(scope="session")
def studio(x_display):
    """The real studio, created once per test session (Dear PyGui cannot re-create its context in a process)."""
    from app.shell import Studio, StudioConfig
    from guitools import settle

    st = Studio(StudioConfig(width=1280, height=1000, title="mipstudio-test"))  # 8 views: 4 rows of panels
    st.setup()
    for view in st.views.values():
        settle(st, view)
    yield st
    st.close()
