"""Where generated assets live, and how they are written.

Generated assets (the fish OBJ/PNG, synthetic datasets) are deterministic, so they are built once per
``name`` + ``version`` into a cache folder and reused. Every write goes through :func:`atomic_open` (a temp file in
the destination folder followed by ``os.replace``): a crash or an exception mid-write never leaves a truncated file
that a later run would mistake for a finished one. It is the project's only atomic-write primitive (checkpoints,
PLYs and CLI outputs use it too), kept here because ``assets`` sits below ``methods``.
"""
from __future__ import annotations

import contextlib
import glob
import io
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import IO, Callable, Iterator

import numpy as np

CACHE_ENV = "MIPSTUDIO_CACHE"
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_build_lock = threading.Lock()


def cache_dir() -> Path:
    """The asset cache folder (``$MIPSTUDIO_CACHE``, else ``~/.cache/mipstudio``), created if missing."""
    env = os.environ.get(CACHE_ENV, "").strip()
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "mipstudio"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(f"cannot create the asset cache folder {root} ({e.strerror or e}); "
                      f"set {CACHE_ENV} to a writable folder") from e
    return root


def _check_parent(path: Path) -> Path:
    parent = path.parent
    if not parent.exists():
        raise FileNotFoundError(f"cannot write {path}: folder {parent} does not exist; create it or pick another path")
    if not parent.is_dir():
        raise NotADirectoryError(f"cannot write {path}: {parent} is not a folder; pick another path")
    return parent


_ATOMIC_MODES = ("wb", "w")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", *, parents: bool = False) -> Iterator[IO]:
    """The one atomic-write primitive: yield a temp file next to ``path``; on clean exit fsync it and
    ``os.replace`` it onto ``path``.

    The temp file lives in the target folder so the rename is atomic (same filesystem) and readers (a live view
    reloading a checkpoint, a later run finding a cache entry) see the old file or the whole new one, never a
    truncated one. If the body raises, the temp file is removed and ``path`` keeps its previous content (or stays
    absent). ``mode`` is ``"wb"`` or ``"w"`` (UTF-8 text). A missing parent folder is a one-line
    FileNotFoundError unless ``parents=True`` creates it.
    """
    if mode not in _ATOMIC_MODES:
        raise ValueError(f"atomic_open supports modes 'wb' and 'w', not {mode!r}")
    target = Path(path)
    if parents:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # e.g. a path component is a file: name what was being written
            raise OSError(e.errno, f"cannot create the folder for {target} ({e.strerror}: {e.filename})") from None
    parent = _check_parent(target)
    remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            crash = CRASH_AFTER_BYTES is not None and (target.name == CRASH_TARGET if CRASH_TARGET
                                                       else target.suffix == ".pt")
            yield _CrashAfter(f, CRASH_AFTER_BYTES) if crash else f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; outputs and assets are meant to be shared
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def remove_stale_temps(target: Path) -> int:
    """Delete temp files of ``target`` left by writers that no longer run (a process killed mid-write: its
    ``.NAME.PID.*.tmp`` stays behind). Temps of live processes, this one's included, are kept. Returns how many went."""
    removed = 0
    for tmp in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        pid = tmp.name[len(target.name) + 2:].split(".", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


# The crash-safety harness (bench/kill9.py) sets MIPSTUDIO_CRASH_AFTER_BYTES=N in a child process: its next write of
# the file named MIPSTUDIO_CRASH_TARGET (if unset: of any checkpoint, .pt) SIGKILLs the process after N bytes: a
# kill -9 in the middle of the write at a chosen offset.
CRASH_AFTER_BYTES = int(os.environ["MIPSTUDIO_CRASH_AFTER_BYTES"]) if os.environ.get(
    "MIPSTUDIO_CRASH_AFTER_BYTES", "").isdigit() else None
CRASH_TARGET = os.environ.get("MIPSTUDIO_CRASH_TARGET", "")


class _CrashAfter(io.RawIOBase):
    """A write-only file that kills its own process (SIGKILL) once ``limit`` bytes went through."""

    def __init__(self, f: IO, limit: int) -> None:
        super().__init__()
        self.f, self.left = f, limit

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        data = bytes(b)
        if len(data) >= self.left:
            import signal

            self.f.write(data[:self.left])
            self.f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        self.left -= len(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()

    def fileno(self) -> int:
        return self.f.fileno()

    def tell(self) -> int:
        return self.f.tell()

    def seekable(self) -> bool:
        return False


def check_output_folder(out: Path, overwrite: bool) -> None:
    """A job may write ``out`` only if it is missing, empty, or ``overwrite`` is set (one line otherwise)."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder; pick another output path")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out}: folder exists and is not empty; choose another folder or overwrite it "
                              "(--overwrite)")


@contextlib.contextmanager
def staged_folder(out: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Build a whole folder atomically: yields a temp folder next to ``out``; on success it replaces ``out`` (an
    existing one is swapped out only then), on any error or cancel it is removed, so nothing half-written is ever
    found at ``out``."""
    out = Path(out)
    check_output_folder(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if out.is_dir():
            check_output_folder(out, overwrite)  # someone may have filled it meanwhile
            trash = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            os.rmdir(trash)
            os.replace(out, trash)
            try:
                os.replace(tmp, out)
            except BaseException:
                os.replace(trash, out)
                raise
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, parents: bool = False) -> Path:
    """Write ``data`` to ``path`` all or nothing (see :func:`atomic_open`); returns the path."""
    with atomic_open(path, "wb", parents=parents) as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, *, parents: bool = False) -> Path:
    """UTF-8 text version of :func:`atomic_write_bytes` (bytes exactly as given: no newline translation)."""
    return atomic_write_bytes(path, text.encode("utf-8"), parents=parents)


def image_to_uint(array: np.ndarray, bits: int = 8) -> np.ndarray:
    """Float [0,1] (or already-integer) image -> uint8/uint16 HxW or HxWx{1,3,4}; rejects anything else."""
    a = np.asarray(array)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)) or a.size == 0:
        raise ValueError(f"image must be HxW or HxWx{{1,3,4}}, got shape {a.shape}")
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    dtype = np.uint8 if bits == 8 else np.uint16
    if a.dtype == dtype:
        return a
    if a.dtype.kind in "ui":
        raise ValueError(f"integer image must already be {np.dtype(dtype).name}, got {a.dtype}")
    if a.dtype == np.bool_:
        a = a.astype(np.float32)
    if not np.all(np.isfinite(a)):
        raise ValueError("image contains NaN or Inf")
    scale = float(np.iinfo(dtype).max)
    return np.round(np.clip(a, 0.0, 1.0) * scale).astype(dtype)


def atomic_save_image(path: str | os.PathLike, array: np.ndarray, *, bits: int = 8) -> Path:
    """Encode ``array`` (float in [0,1]) by the file extension (PNG, JPEG …) and write it atomically."""
    import imageio.v3 as iio

    path = Path(path)
    _check_parent(path)
    img = image_to_uint(array, bits)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    ext = path.suffix.lower()
    if not ext:
        raise ValueError(f"cannot tell the image format of {path}: no file extension")
    buf = io.BytesIO()
    try:
        iio.imwrite(buf, img, extension=ext)
    except Exception as e:  # noqa: BLE001 - imageio raises many types for unknown formats
        raise ValueError(f"cannot encode an image as '{ext}' for {path}: {e}") from e
    return atomic_write_bytes(path, buf.getvalue())


def cached(name: str, builder: Callable[[Path], object], version: int | str = 1) -> Path:
    """The cache folder ``<cache>/<name>-v<version>``, filled by ``builder(folder)`` the first time only.

    The builder writes into a fresh temp folder that is renamed into place when it returns, so an interrupted
    build is never mistaken for a finished one, and bumping ``version`` invalidates old builds.
    """
    if not _NAME_RE.match(name) or not _NAME_RE.match(str(version)):
        raise ValueError(f"cache name/version must be letters, digits, '_', '-' or '.', got {name!r}/{version!r}")
    root = cache_dir()
    target = root / f"{name}-v{version}"
    with _build_lock:
        if target.is_dir():
            return target
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{target.name}."))
        try:
            builder(tmp)
            os.chmod(tmp, 0o755)
            try:
                os.replace(tmp, target)
            except OSError:
                if not target.is_dir():  # a concurrent process finishing first is fine; anything else is not
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target
