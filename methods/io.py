"""Versioned, atomically written checkpoints.

A checkpoint is ``{"format": "mipstudio-checkpoint", "kind": str, "version": int, "payload": dict}`` saved with
``torch.save``. Writes go through :func:`assets.cache.atomic_open` (re-exported here): a temp file in the target
directory renamed over the target with ``os.replace``, so a crash or an exception mid-write never leaves a
truncated checkpoint behind (the live view may be reloading that very file while a job trains). Loading validates
format, kind, version, keys and shapes and raises :class:`CheckpointError` whose message is one line naming the
problem, because that line is what the Jobs panel and the CLI show to the user.
"""
from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from assets.cache import atomic_open

FORMAT = "mipstudio-checkpoint"

__all__ = [
    "FORMAT",
    "CheckpointError",
    "atomic_open",
    "atomic_write",
    "save_checkpoint",
    "load_checkpoint",
    "load_torch_file",
]


class CheckpointError(ValueError):
    """A checkpoint cannot be used; ``str(err)`` is a single human-readable line."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def atomic_write(path: str | os.PathLike, write_fn: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write_fn(binary_file)`` and atomically publish the result at ``path`` (parent folders are created);
    returns the path."""
    with atomic_open(path, "wb", parents=True) as f:
        write_fn(f)
    return Path(path)


def save_checkpoint(path: str | os.PathLike, payload: dict, *, kind: str, version: int) -> Path:
    """Atomically write ``payload`` wrapped with format/kind/version so loaders can reject what they can't read.

    Keep payloads to tensors, numbers, strings and (nested) dicts/lists so they load with ``weights_only=True``.
    """
    if not isinstance(payload, dict):
        raise TypeError(f"checkpoint payload must be a dict, got {type(payload).__name__}")
    if not isinstance(version, int) or version < 0:
        raise ValueError(f"checkpoint version must be a non-negative int, got {version!r}")
    record = {"format": FORMAT, "kind": str(kind), "version": int(version), "payload": payload}
    return atomic_write(path, lambda f: torch.save(record, f))


def _lookup(payload: Mapping, name: str) -> tuple[bool, Any]:
    """Find ``name`` in ``payload``: an exact key first, else a '/'-separated path into nested dicts."""
    if name in payload:
        return True, payload[name]
    node: Any = payload
    for part in name.split("/"):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return False, None
    return True, node


def _fmt_shape(shape: Iterable) -> str:
    dims = ["*" if d is None else str(int(d)) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _shape_matches(actual: tuple[int, ...], expected: tuple[int | None, ...]) -> bool:
    return len(actual) == len(expected) and all(e is None or int(e) == a for a, e in zip(actual, expected))


# torch.save's legacy (non-zip) format starts with this pickled magic number (protocol 2).
_LEGACY_TORCH_MAGIC = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)


def _looks_like_torch_file(path: Path) -> bool:
    """An intact torch.save output: a complete zip archive, or the legacy format's magic number up front."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_LEGACY_TORCH_MAGIC))
    except OSError:
        return False
    return head.startswith(_LEGACY_TORCH_MAGIC) or zipfile.is_zipfile(path)


def load_torch_file(path: str | os.PathLike, *, weights_only: bool = True,
                    map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` for a file the user named, with every failure a one-line :class:`CheckpointError`.

    torch reports junk and truncated files with multi-line internals (random bytes even read as "unsafe to
    unpickle"), so only an intact torch file that holds non-tensor objects gets the weights_only advice; anything
    else is "not a mipstudio checkpoint"."""
    p = Path(path)
    not_ours = (f"{p} is not a mipstudio checkpoint (not a torch file, or truncated); "
                f"pass a checkpoint.pt written by `train`")
    try:
        return torch.load(p, map_location=map_location, weights_only=weights_only)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower() and _looks_like_torch_file(p):
            raise CheckpointError(
                f"{p}: contains objects that are unsafe to unpickle; load with weights_only=False only if you trust it"
            ) from None
        raise CheckpointError(not_ours) from None
    except Exception:  # torch raises many types for junk input (RuntimeError, EOFError, IndexError, OSError, …)
        raise CheckpointError(not_ours) from None


def load_checkpoint(
    path: str | os.PathLike,
    *,
    kind: str,
    expected_keys: Iterable[str] | None = None,
    expected_shapes: Mapping[str, tuple[int | None, ...]] | None = None,
    max_version: int | None = None,
    migrate: Callable[[dict, int], dict] | None = None,
    weights_only: bool = True,
    map_location: str | torch.device = "cpu",
) -> dict:
    """Load and validate a checkpoint written by :func:`save_checkpoint`; return its payload.

    ``expected_keys`` / ``expected_shapes`` name payload entries either by exact key or by a '/' path into nested
    dicts (e.g. ``"model/net.0.weight"``); a ``None`` dim in an expected shape matches any size. A file whose
    version exceeds ``max_version`` was written by a newer mipstudio and is rejected; an older one is passed through
    ``migrate(payload, version)`` when given. Every problem raises :class:`CheckpointError` with one line.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint not found: {p}")
    if not p.is_file():
        raise CheckpointError(f"checkpoint path is not a file: {p}")
    record = load_torch_file(p, weights_only=weights_only, map_location=map_location)
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"{p} is not a mipstudio checkpoint (a torch file without the '{FORMAT}' header); "
                              f"pass a checkpoint.pt written by `train`")
    got_kind = record.get("kind")
    if got_kind != kind:
        raise CheckpointError(f"{p}: wrong checkpoint kind {got_kind!r}, expected {kind!r}")
    version = record.get("version")
    if not isinstance(version, int):
        raise CheckpointError(f"{p}: checkpoint has no valid version (got {version!r})")
    if max_version is not None and version > max_version:
        raise CheckpointError(
            f"{p}: checkpoint version {version} is newer than supported version {max_version}; update mipstudio"
        )
    payload = record.get("payload")
    if not isinstance(payload, dict):
        raise CheckpointError(f"{p}: checkpoint payload is {type(payload).__name__}, expected dict")
    if migrate is not None and max_version is not None and version < max_version:
        payload = migrate(payload, version)

    if expected_keys is not None:
        missing = [k for k in expected_keys if not _lookup(payload, k)[0]]
        if missing:
            raise CheckpointError(f"{p}: missing keys: {', '.join(missing)}")
    if expected_shapes:
        problems = []
        for name, want in expected_shapes.items():
            found, value = _lookup(payload, name)
            if not found:
                problems.append(f"{name} missing")
            elif not isinstance(value, (torch.Tensor, np.ndarray)):
                problems.append(f"{name} is {type(value).__name__}, not a tensor")
            elif not _shape_matches(tuple(value.shape), tuple(want)):
                problems.append(f"{name} is {_fmt_shape(value.shape)}, expected {_fmt_shape(want)}")
        if problems:
            raise CheckpointError(f"{p}: shape mismatch: {'; '.join(problems)}")
    return payload
