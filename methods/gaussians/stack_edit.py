"""Editing a whole Mipmap-GS stack at once: one selection on the base, followed by every level.

Levels are finetuned copies of the base (methods/gaussians/mipmap.py): with the released position LR of 0 a kept
Gaussian keeps its exact centre, densification prunes (shifting indices), clones (a copy at the same centre) and
splits (two children sampled from the parent's Gaussian, scales / 1.6). :func:`match_level` finds, for every level
Gaussian, the base Gaussian it came from:

1. **by index** — row i of the level sits where row i of the base does (within 1e-6 of the scene's extent);
2. **by position** — else a base centre at the same place (pruned-and-shifted rows, clones);
3. **within a radius** — else the nearest base centre within 3 σ of a split parent (3 × 1.6 × the level
   Gaussian's largest scale): split children and centres that moved under a non-zero position LR;
4. otherwise unmatched: such a Gaussian follows no selection (it stays unless a crop removes it).

:class:`StackSession` applies every operation to the base; each level then takes the same operation on its
corresponding Gaussians (its selection is always the base selection mapped through the correspondence; a crop uses
the level's own centres; a rotation about the "centroid" uses the base selection's centroid on every level), and one
undo reverts the base and every level together.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from methods.gaussians.edit import (Crop, Delta, EditError, EditSession, Invert, Op, SelectNone, Transform, _Select,
                                    locked)
from methods.gaussians.model import GaussianModel

if TYPE_CHECKING:
    from methods.gaussians.mipmap import MipStack

SPLIT_FACTOR = 1.6  # a split child's scale is its parent's / 1.6 (research/gaussians.md, densification)


@dataclass(frozen=True)
class Correspondence:
    """For each level Gaussian its base Gaussian (-1: none), and how many were found each way."""

    index: torch.Tensor  # (N_level,) int64
    by_index: int
    by_position: int
    by_radius: int

    @property
    def unmatched(self) -> int:
        return int(len(self.index)) - self.by_index - self.by_position - self.by_radius

    def summary(self) -> str:
        n = max(len(self.index), 1)
        return (f"{self.by_index / n:.1%} by index, {self.by_position / n:.1%} by position, "
                f"{self.by_radius / n:.1%} within radius, {self.unmatched / n:.1%} unmatched")


def match_level(base: GaussianModel, level: GaussianModel, sigmas: float = 3.0, tol: float = 1e-6) -> Correspondence:
    """The base Gaussian each ``level`` Gaussian corresponds to (module docstring: by index, position, radius)."""
    from scipy.spatial import cKDTree

    bm = base.means.detach().cpu().double().numpy()
    lm = level.means.detach().cpu().double().numpy()
    corr = np.full(len(lm), -1, dtype=np.int64)
    if len(bm) == 0 or len(lm) == 0:
        return Correspondence(torch.from_numpy(corr), 0, 0, 0)
    eps = tol * max(float(np.ptp(bm, axis=0).max()), 1e-9)
    n = min(len(bm), len(lm))
    same = np.linalg.norm(lm[:n] - bm[:n], axis=1) <= eps
    corr[:n][same] = np.nonzero(same)[0]
    rest = np.nonzero(corr < 0)[0]
    by_position = by_radius = 0
    if len(rest):
        radius = sigmas * SPLIT_FACTOR * level.log_scales.detach().cpu().double().max(1).values.exp().numpy()[rest]
        d, j = cKDTree(bm).query(lm[rest], k=1, distance_upper_bound=float(max(radius.max(), eps)))
        exact, near = d <= eps, (d > eps) & (d <= radius)
        corr[rest[exact | near]] = j[exact | near]
        by_position, by_radius = int(exact.sum()), int(near.sum())
    return Correspondence(torch.from_numpy(corr), int(same.sum()), by_position, by_radius)


_SELECTION_OPS = (_Select, SelectNone, Invert)


class StackSession(EditSession):
    """An :class:`EditSession` on the base whose every operation also applies to the corresponding Gaussians of each
    level; ``levels`` are (scale, model) pairs, the base excluded. Levels must share the base's SH degree."""

    def __init__(self, base: GaussianModel, levels: list[tuple[float, GaussianModel]],
                 max_history_mb: float = 512.0) -> None:
        for scale, m in levels:
            if m.sh_rest.shape[1] != base.sh_rest.shape[1]:
                raise EditError(f"the x{scale:g} level has SH degree {m.max_sh_degree}, the base "
                                f"{base.max_sh_degree}; a stack is edited only when every level has the base's")
        super().__init__(base, max_history_mb)
        self.levels = [(float(scale), EditSession(m, max_history_mb=float("inf")), match_level(base, m))
                       for scale, m in levels]
        self.followed: list[list[list[Delta]]] = []  # per history entry: per level, the deltas it applied

    def _before_apply(self, op: Op) -> Op:
        return self._for_levels(op)

    def _after_apply(self, level_op: Op) -> None:
        del self.followed[len(self.history) - 1:]  # the redo tail the new entry replaced
        self.followed.append([self._follow(lv, corr, level_op) for _, lv, corr in self.levels])

    @locked
    def undo(self) -> Op | None:
        if self.position == 0:
            return None
        for (_, lv, _), deltas in zip(self.levels, self.followed[self.position - 1]):
            for d in reversed(deltas):
                lv.revert(d)
        return super().undo()

    @locked
    def redo(self) -> Op | None:
        if self.position == len(self.history):
            return None
        op = self.history[self.position][0]
        level_op = self._for_levels(op)
        super().redo()
        self.followed[self.position - 1] = [self._follow(lv, corr, level_op) for _, lv, corr in self.levels]
        return op

    def _bound(self) -> None:
        total = sum(d.nbytes for _, d in self.history) + sum(d.nbytes for f in self.followed for ds in f for d in ds)
        while len(self.history) > 1 and total > self.max_history_bytes:
            total -= self.history.pop(0)[1].nbytes + sum(d.nbytes for ds in self.followed.pop(0) for d in ds)
            self.position -= 1

    def _for_levels(self, op: Op) -> Op:
        """``op`` as the levels take it: a rotation or scaling about the "centroid" pivots on the base selection's
        centroid (each level's own selection centroid would differ slightly and tear the stack apart)."""
        if isinstance(op, Transform) and op.pivot == "centroid":
            idx = self.selected()
            if len(idx):
                c = self.model.means.detach()[idx].double().mean(0)
                return replace(op, pivot=tuple(float(v) for v in c))
        return op

    def _follow(self, lv: EditSession, corr: Correspondence, op: Op) -> list[Delta]:
        """Apply ``op`` to one level and map the base selection onto it; returns the deltas, in order."""
        deltas = []
        if not isinstance(op, _SELECTION_OPS):
            try:  # the level's selection already is the base's, mapped
                if isinstance(op, Crop) or bool((lv.selection & lv.alive).any()):
                    deltas.append(op.apply(lv))
            except EditError:
                pass  # e.g. nothing of this level is outside the crop
        want = torch.zeros(lv.n, dtype=torch.bool)
        matched = corr.index >= 0
        want[matched] = self.selection[corr.index[matched]]
        want &= lv.alive
        changed = torch.nonzero(want ^ lv.selection).flatten()
        lv.selection = want
        deltas.append(Delta(flipped={"selection": changed}))
        return deltas

    @locked
    def display_levels(self, tint: bool = True) -> list[tuple[float, GaussianModel]]:
        """(scale, model to draw) for the base (scale 1) and every level, sorted by scale."""
        return sorted([(1.0, self.display(tint))] + [(s, lv.display(tint)) for s, lv, _ in self.levels],
                      key=lambda t: t[0])

    @locked
    def edited_levels(self) -> list[tuple[float, GaussianModel]]:
        """(scale, model without its deleted Gaussians) for every level, the base excluded: what a save writes."""
        return [(s, lv.edited()) for s, lv, _ in self.levels]

    def level_counts(self) -> list[tuple[float, int, int]]:
        """(scale, alive, selected) per level."""
        return [(s, *lv.counts) for s, lv, _ in self.levels]


# ----- saving ---------------------------------------------------------------------------------------------------------
def level_file_name(scale: float) -> str:
    """``level_1-4.ply`` for scale ¼, ``level_2.ply`` for 2: the file a saved stack gives each level."""
    from methods.gaussians.mipmap import scale_label

    return f"level_{scale_label(scale).replace('/', '-')}.ply"


def replaces_original(out: str | Path, original: str | Path) -> bool:
    """Whether saving to ``out`` would overwrite ``original``'s files: the same PLY, or for a stack (mipmap.json)
    the same folder, where its base.ply lives."""
    out, original = Path(out).expanduser(), Path(original).expanduser()
    if original.suffix.lower() == ".json" or out.suffix.lower() == ".json":
        return out.parent.resolve() == original.parent.resolve()
    return out.exists() and out.resolve() == original.resolve()


def save_stack(session: StackSession, stack: "MipStack", out: str | Path, note: str = "") -> Path:
    """Write an edited stack: ``base.ply`` and one PLY per level next to ``out``, then ``out`` (a new mipmap.json,
    the original's metadata plus ``meta["edited"]``). Each file is written atomically and the JSON last, so a failed
    save never leaves a mipmap.json naming missing or half-written levels."""
    from methods.gaussians.ply import save_ply

    out = Path(out)
    if out.suffix.lower() != ".json":
        raise EditError(f"a stack is saved as a mipmap.json (with its PLYs beside it), got {out.name}")
    folder = out.parent
    folder.mkdir(parents=True, exist_ok=True)
    save_ply(session.edited(), folder / "base.ply")
    levels = []
    for (scale, model), lv in zip(session.edited_levels(), sorted(stack.levels, key=lambda lv: lv.scale)):
        name = level_file_name(scale)
        save_ply(model, folder / name)
        levels.append(replace(lv, ply=name))
    meta = {**stack.meta, "edited": note or f"{session.position} operations"}
    return replace(stack, base="base.ply", levels=tuple(levels), meta=meta).write(out)
