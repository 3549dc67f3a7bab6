"""Editing a Gaussian scene: operation objects on index masks, with a memory-bounded undo/redo history.

An :class:`EditSession` holds a model and two (N,) masks: ``alive`` and ``selection``. Deleting is a mask flip, not
a copy of the scene, so delete and its undo cost O(N) bits on a million Gaussians. Every edit is an operation
object (a frozen dataclass that also reads and writes the JSON of an ops file); applying it returns a
:class:`Delta` holding only what it changed: the flipped indices of a mask, or the indices and previous rows of the
parameters it rewrote. Undo puts those rows back bit-exactly; redo applies the operation again (operations are
deterministic, so redo equals the first apply). :meth:`EditSession.edited` is the model without the deleted
Gaussians: what a save writes.

A rotation also turns the view-dependent SH bands (:func:`rotate_sh_rest`), so a rotated selection shows the same
colours from the same relative directions.
"""
from __future__ import annotations

import functools
import math
import threading
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from methods.gaussians.model import SH_C0, GaussianModel

if TYPE_CHECKING:
    from render.camera import Camera

MODES = ("set", "add", "remove", "intersect")
OPACITY_EPS = 1e-6
SELECTION_TINT = (1.0, 0.45, 0.05)  # selected Gaussians drift to orange in the view (not in what is saved)
TINT_WEIGHT = 0.6


class EditError(ValueError):
    """An edit that cannot apply (empty selection, bad values, unknown operation): one line, nothing changed."""


def _finite(name: str, *values: float) -> None:
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        raise EditError(f"{name} must be finite numbers, got {values if len(values) > 1 else values[0]!r}")


def _vec3(name: str, v: Any) -> tuple[float, float, float]:
    try:
        t = tuple(float(x) for x in v)
    except (TypeError, ValueError):
        raise EditError(f"{name} must be 3 numbers, got {v!r}") from None
    if len(t) != 3:
        raise EditError(f"{name} must be 3 numbers, got {len(t)}")
    _finite(name, *t)
    return t  # type: ignore[return-value]


@dataclass
class Delta:
    """What one operation changed: flipped mask indices and previous parameter rows."""

    flipped: dict[str, torch.Tensor] = field(default_factory=dict)                     # mask name -> indices
    rows: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)   # param -> (indices, old)

    @property
    def nbytes(self) -> int:
        n = sum(t.numel() * t.element_size() for t in self.flipped.values())
        return n + sum(i.numel() * i.element_size() + o.numel() * o.element_size() for i, o in self.rows.values())


# ----- operations ---------------------------------------------------------------------------------------------------
OPS: dict[str, type["Op"]] = {}


@dataclass(frozen=True)
class Op(ABC):
    """One edit. ``apply(session)`` changes the session and returns the :class:`Delta` that undoes it."""

    kind: ClassVar[str] = ""
    needs_selection: ClassVar[bool] = False

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.kind:
            OPS[cls.kind] = cls

    @abstractmethod
    def apply(self, s: "EditSession") -> Delta:
        """Change ``s`` and return what undoes it."""

    def label(self) -> str:
        """One line for the history panel."""
        args = ", ".join(f"{k}={_short(v)}" for k, v in asdict(self).items())
        return f"{self.kind}({args})" if args else self.kind

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.kind, **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}}

    @staticmethod
    def from_dict(d: Any) -> "Op":
        """The operation an ops-file entry describes; anything else is one :class:`EditError` line."""
        if not isinstance(d, dict) or "op" not in d:
            raise EditError(f"an operation must be an object with an 'op' field, got {str(d)[:60]!r}")
        if not isinstance(d["op"], str):
            raise EditError(f"'op' must be an operation name, got {str(d['op'])[:40]!r}; "
                            f"known: {', '.join(sorted(OPS))}")
        cls = OPS.get(d["op"])
        if cls is None:
            raise EditError(f"unknown operation {str(d['op'])[:40]!r}; known: {', '.join(sorted(OPS))}")
        names = {f.name for f in fields(cls)}
        extra = sorted(set(d) - names - {"op"})
        if extra:
            raise EditError(f"{d['op']}: unknown field(s) {', '.join(extra)}; fields: {', '.join(sorted(names))}")
        try:
            return cls(**{k: v for k, v in d.items() if k != "op"})
        except TypeError as e:
            raise EditError(f"{d['op']}: {e}") from None


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, tuple) and len(v) > 4:
        return f"[{len(v)} values]"
    if isinstance(v, tuple):
        return "(" + ", ".join(_short(x) for x in v) + ")"
    return str(v)


@dataclass(frozen=True)
class _Select(Op):
    """A selection change: the criterion's mask combined with the current selection by ``mode``."""

    mode: str = "set"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise EditError(f"{self.kind}: mode must be one of {', '.join(MODES)}, got {self.mode!r}")

    @abstractmethod
    def criterion(self, s: "EditSession") -> torch.Tensor:
        """The (N,) mask this selection picks, before ``mode`` combines it with the current selection."""

    def apply(self, s: "EditSession") -> Delta:
        hit = self.criterion(s) & s.alive
        cur = s.selection
        new = {"set": hit, "add": cur | hit, "remove": cur & ~hit, "intersect": cur & hit}[self.mode]
        changed = torch.nonzero(new ^ cur).flatten()
        s.selection = new
        return Delta(flipped={"selection": changed})


@dataclass(frozen=True)
class SelectAll(_Select):
    kind: ClassVar[str] = "select_all"

    def criterion(self, s: "EditSession") -> torch.Tensor:
        return torch.ones_like(s.alive)


@dataclass(frozen=True)
class SelectNone(Op):
    kind: ClassVar[str] = "select_none"

    def apply(self, s: "EditSession") -> Delta:
        changed = torch.nonzero(s.selection).flatten()
        s.selection = torch.zeros_like(s.selection)
        return Delta(flipped={"selection": changed})


@dataclass(frozen=True)
class Invert(Op):
    kind: ClassVar[str] = "invert"

    def apply(self, s: "EditSession") -> Delta:
        changed = torch.nonzero(s.alive).flatten()       # every alive row flips
        s.selection = s.alive & ~s.selection
        return Delta(flipped={"selection": changed})


@dataclass(frozen=True, eq=False)
class SelectIndices(_Select):
    """Explicit indices (what a screen rectangle or lasso resolved to, so a replay is exact). ``indices`` may be a
    sequence or an integer tensor; it is kept as an int64 tensor."""

    kind: ClassVar[str] = "select_indices"
    indices: Any = ()
    __eq__ = object.__eq__        # compared by identity: a tensor field has no truth value
    __hash__ = object.__hash__

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            idx = torch.as_tensor(self.indices if len(self.indices) else [], dtype=torch.long).flatten()
        except (TypeError, ValueError, RuntimeError):
            raise EditError("select_indices: indices must be a list of integers") from None
        if isinstance(self.indices, torch.Tensor) and (self.indices.is_floating_point() or self.indices.is_complex()):
            raise EditError("select_indices: indices must be integers")
        if not isinstance(self.indices, torch.Tensor) and not all(
                isinstance(i, int) and not isinstance(i, bool) or hasattr(i, "__index__") and not isinstance(i, bool)
                for i in self.indices):
            raise EditError("select_indices: indices must be integers")
        object.__setattr__(self, "indices", idx)

    def label(self) -> str:
        return f"select_indices(mode={self.mode}, {len(self.indices):,} Gaussians)"

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.kind, "mode": self.mode, "indices": self.indices.tolist()}

    def criterion(self, s: "EditSession") -> torch.Tensor:
        idx = self.indices
        if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= s.n):
            raise EditError(f"select_indices: indices must be in 0..{s.n - 1}, got {int(idx.min())}..{int(idx.max())}")
        m = torch.zeros(s.n, dtype=torch.bool)
        m[idx] = True
        return m


@dataclass(frozen=True)
class SelectBox(_Select):
    """Centres inside the axis-aligned box lo..hi (world units)."""

    kind: ClassVar[str] = "select_box"
    lo: tuple[float, float, float] = (-1.0, -1.0, -1.0)
    hi: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "lo", _vec3(f"{self.kind}: lo", self.lo))
        object.__setattr__(self, "hi", _vec3(f"{self.kind}: hi", self.hi))
        if any(a > b for a, b in zip(self.lo, self.hi)):
            raise EditError(f"{self.kind}: lo must be <= hi on every axis, got {self.lo} and {self.hi}")

    def criterion(self, s: "EditSession") -> torch.Tensor:
        m = s.model.means.detach()
        return ((m >= torch.tensor(self.lo)) & (m <= torch.tensor(self.hi))).all(1)


@dataclass(frozen=True)
class SelectSphere(_Select):
    kind: ClassVar[str] = "select_sphere"
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "center", _vec3(f"{self.kind}: center", self.center))
        _finite(f"{self.kind}: radius", self.radius)
        if self.radius < 0:
            raise EditError(f"{self.kind}: radius must be >= 0, got {self.radius}")

    def criterion(self, s: "EditSession") -> torch.Tensor:
        d = s.model.means.detach() - torch.tensor(self.center)
        return d.pow(2).sum(1) <= self.radius ** 2


@dataclass(frozen=True)
class SelectOpacity(_Select):
    """Opacity (after the sigmoid) within [min, max]: ``max`` 0.1 finds faint floaters."""

    kind: ClassVar[str] = "select_opacity"
    min: float = 0.0
    max: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _finite(f"{self.kind}: min and max", self.min, self.max)
        if not 0.0 <= self.min <= self.max <= 1.0:
            raise EditError(f"{self.kind}: need 0 <= min <= max <= 1, got {self.min:g}..{self.max:g}")

    def criterion(self, s: "EditSession") -> torch.Tensor:
        o = torch.sigmoid(s.model.logit_opacities.detach())
        return (o >= self.min) & (o <= self.max)


@dataclass(frozen=True)
class SelectScale(_Select):
    """Largest axis scale (world units) within [min, max]: ``min`` large finds big blurry floaters."""

    kind: ClassVar[str] = "select_scale"
    min: float = 0.0
    max: float = math.inf

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (isinstance(self.min, (int, float)) and isinstance(self.max, (int, float)) and
                math.isfinite(self.min) and not math.isnan(self.max) and 0.0 <= self.min <= self.max):
            raise EditError(f"{self.kind}: need 0 <= min <= max (max may be inf), got {self.min!r}..{self.max!r}")

    def criterion(self, s: "EditSession") -> torch.Tensor:
        sc = s.model.log_scales.detach().max(1).values.exp()
        return (sc >= self.min) & (sc <= self.max)


@dataclass(frozen=True)
class Grow(Op):
    """Add every alive Gaussian whose centre lies within ``radius`` of a selected one (``shrink``: drop the selected
    ones that have an unselected alive Gaussian that close) — rounding out a rectangle's ragged edge in 3D."""

    kind: ClassVar[str] = "grow"
    radius: float = 0.05

    def __post_init__(self) -> None:
        _finite(f"{self.kind}: radius", self.radius)
        if self.radius <= 0:
            raise EditError(f"{self.kind}: radius must be > 0, got {self.radius:g}")

    def apply(self, s: "EditSession") -> Delta:
        inside, outside = (s.selection & s.alive), (s.alive & ~s.selection)
        if self.kind == "shrink":
            inside, outside = outside, inside
        near = _near(s.model.means.detach(), inside, outside, self.radius)  # ``outside`` rows near ``inside``
        changed = torch.nonzero(near).flatten()
        s.selection = s.selection ^ near
        return Delta(flipped={"selection": changed})


@dataclass(frozen=True)
class Shrink(Grow):
    kind: ClassVar[str] = "shrink"


def _near(means: torch.Tensor, sources: torch.Tensor, candidates: torch.Tensor, radius: float) -> torch.Tensor:
    """(N,) mask of the ``candidates`` within ``radius`` of any of the ``sources`` (a k-d tree over the sources;
    only candidates inside the sources' bounding box ± radius are queried)."""
    import numpy as np
    from scipy.spatial import cKDTree

    out = torch.zeros(len(means), dtype=torch.bool)
    if not bool(sources.any()) or not bool(candidates.any()):
        return out
    src = means[sources].double().numpy()
    lo, hi = src.min(0) - radius, src.max(0) + radius
    cand = torch.nonzero(candidates).flatten().numpy()
    pts = means[cand].double().numpy()
    cand = cand[np.all((pts >= lo) & (pts <= hi), 1)]
    if len(cand):
        d, _ = cKDTree(src).query(means[cand].double().numpy(), k=1, distance_upper_bound=radius)
        out[torch.from_numpy(cand[d <= radius])] = True
    return out


@dataclass(frozen=True)
class Delete(Op):
    """Delete the selection (the rows stay, masked: undo is a mask flip)."""

    kind: ClassVar[str] = "delete"
    needs_selection: ClassVar[bool] = True

    def apply(self, s: "EditSession") -> Delta:
        idx = s.selected()
        s.alive[idx] = False
        s.selection[idx] = False
        return Delta(flipped={"alive": idx, "selection": idx})


@dataclass(frozen=True)
class Crop(Op):
    """Delete every Gaussian whose centre is outside a box (lo, hi) or a sphere (center, radius)."""

    kind: ClassVar[str] = "crop"
    shape: str = "box"
    lo: tuple[float, float, float] = (-1.0, -1.0, -1.0)
    hi: tuple[float, float, float] = (1.0, 1.0, 1.0)
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius: float = 1.0

    def __post_init__(self) -> None:
        if self.shape not in ("box", "sphere"):
            raise EditError(f"crop: shape must be box or sphere, got {self.shape!r}")
        region = (SelectBox(lo=self.lo, hi=self.hi) if self.shape == "box" else
                  SelectSphere(center=self.center, radius=self.radius))
        object.__setattr__(self, "_region", region)

    def to_dict(self) -> dict[str, Any]:
        keep = ("lo", "hi") if self.shape == "box" else ("center", "radius")
        d = super().to_dict()
        return {k: v for k, v in d.items() if k in ("op", "shape") + keep}

    def apply(self, s: "EditSession") -> Delta:
        outside = s.alive & ~self._region.criterion(s)  # type: ignore[attr-defined]
        idx = torch.nonzero(outside).flatten()
        if len(idx) == 0:
            raise EditError("crop: every Gaussian is inside; nothing to crop")
        sel = idx[s.selection[idx]]
        s.alive[idx] = False
        s.selection[sel] = False
        return Delta(flipped={"alive": idx, "selection": sel})


class _RowsOp(Op, ABC):
    """An operation that rewrites rows of parameters of the selection."""

    needs_selection: ClassVar[bool] = True

    @abstractmethod
    def new_rows(self, s: "EditSession", idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """Parameter name -> the new rows ``idx`` (the old ones are kept for undo)."""

    def apply(self, s: "EditSession") -> Delta:
        idx = s.selected()
        new = self.new_rows(s, idx)
        delta = Delta()
        with torch.no_grad():
            for name, rows in new.items():
                p = getattr(s.model, name)
                delta.rows[name] = (idx, p.data[idx].clone())
                p.data[idx] = rows.to(p.dtype)
        return delta


@dataclass(frozen=True)
class ScaleOpacity(_RowsOp):
    """Opacity × factor (clamped inside (0, 1))."""

    kind: ClassVar[str] = "opacity"
    factor: float = 1.0

    def __post_init__(self) -> None:
        _finite("opacity: factor", self.factor)
        if self.factor < 0:
            raise EditError(f"opacity: factor must be >= 0, got {self.factor:g}")

    def new_rows(self, s: "EditSession", idx: torch.Tensor) -> dict[str, torch.Tensor]:
        o = torch.sigmoid(s.model.logit_opacities.detach()[idx]) * self.factor
        return {"logit_opacities": torch.logit(o.clamp(OPACITY_EPS, 1.0 - OPACITY_EPS))}


@dataclass(frozen=True)
class Recolour(_RowsOp):
    """Colour grading of the SH DC term (the view-independent colour): hue rotation about the grey axis (degrees),
    saturation and brightness factors, then an RGB shift. Linear in RGB, so out-of-range colours stay sensible."""

    kind: ClassVar[str] = "recolour"
    hue: float = 0.0
    saturation: float = 1.0
    brightness: float = 1.0
    shift: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        _finite("recolour: hue, saturation and brightness", self.hue, self.saturation, self.brightness)
        if self.saturation < 0 or self.brightness < 0:
            raise EditError("recolour: saturation and brightness must be >= 0")
        object.__setattr__(self, "shift", _vec3("recolour: shift", self.shift))

    def matrix(self) -> torch.Tensor:
        """The 3×3 RGB map: brightness · (saturation about the channel mean) · (hue rotation)."""
        t = math.radians(self.hue)
        k = torch.full((3, 3), 1.0 / 3.0, dtype=torch.float64)
        skew = torch.tensor([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], dtype=torch.float64) / math.sqrt(3.0)
        rot = math.cos(t) * (torch.eye(3, dtype=torch.float64) - k) + k + math.sin(t) * skew
        sat = k + self.saturation * (torch.eye(3, dtype=torch.float64) - k)
        return self.brightness * sat @ rot

    def new_rows(self, s: "EditSession", idx: torch.Tensor) -> dict[str, torch.Tensor]:
        dc = s.model.sh_dc.detach()[idx].double()             # (n, 1, 3)
        rgb = dc * SH_C0 + 0.5
        rgb = rgb @ self.matrix().T + torch.tensor(self.shift, dtype=torch.float64)
        return {"sh_dc": ((rgb - 0.5) / SH_C0).float()}


@dataclass(frozen=True)
class Transform(_RowsOp):
    """Scale, rotate (a w, x, y, z quaternion) about a pivot, then translate the selection. ``pivot`` "centroid"
    is the selection's mean centre at the time of the apply."""

    kind: ClassVar[str] = "transform"
    translate: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotate: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    scale: float = 1.0
    pivot: Any = "centroid"

    def __post_init__(self) -> None:
        object.__setattr__(self, "translate", _vec3("transform: translate", self.translate))
        try:
            q = tuple(float(x) for x in self.rotate)
        except (TypeError, ValueError):
            q = ()
        if len(q) != 4 or not all(math.isfinite(x) for x in q) or math.hypot(*q) < 1e-12:
            raise EditError(f"transform: rotate must be a non-zero quaternion (w, x, y, z), got {self.rotate!r}")
        object.__setattr__(self, "rotate", q)
        _finite("transform: scale", self.scale)
        if self.scale <= 0:
            raise EditError(f"transform: scale must be > 0, got {self.scale:g}")
        if self.pivot != "centroid":
            object.__setattr__(self, "pivot", _vec3("transform: pivot", self.pivot))

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["pivot"] = self.pivot if self.pivot == "centroid" else list(self.pivot)
        return d

    def new_rows(self, s: "EditSession", idx: torch.Tensor) -> dict[str, torch.Tensor]:
        from render.splat.projection import quat_to_rotmat

        m = s.model
        means = m.means.detach()[idx].double()
        p = means.mean(0) if self.pivot == "centroid" else torch.tensor(self.pivot, dtype=torch.float64)
        qr = torch.tensor(self.rotate, dtype=torch.float64)
        qr = qr / qr.norm()
        r = quat_to_rotmat(qr[None])[0]
        new_means = (means - p) @ (self.scale * r).T + p + torch.tensor(self.translate, dtype=torch.float64)
        rows = {"means": new_means.float(), "quats": _quat_mul(qr, m.quats.detach()[idx].double()).float(),
                "log_scales": (m.log_scales.detach()[idx].double() + math.log(self.scale)).float()}
        if m.sh_rest.shape[1] and not torch.allclose(r, torch.eye(3, dtype=torch.float64)):
            rows["sh_rest"] = rotate_sh_rest(m.sh_rest.detach()[idx], r)
        return rows


def rotate_sh_rest(rest: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """SH bands 1..3 (n, K-1, C) of Gaussians turned by rotation ``r`` (3×3): the new colour towards ``r d`` is the
    old one towards ``d``. Each band l is closed under rotation, so its (2l+1)² matrix is found by least squares
    from the basis at 64 spread directions and at the same directions turned back (exact up to float64 round-off,
    whatever the basis's sign conventions)."""
    degree = int(round(math.sqrt(rest.shape[1] + 1))) - 1
    out = rest.double().clone()
    for band, x in enumerate(_sh_band_rotations(degree, r.double()), start=1):
        lo, hi = band * band, (band + 1) ** 2                # basis columns of the band; sh_rest rows lo-1..hi-2
        out[:, lo - 1:hi - 1] = torch.einsum("jk,nkc->njc", x, rest[:, lo - 1:hi - 1].double())
    return out.to(rest.dtype)


_SH_ROTATIONS: dict[tuple[int, bytes], list[torch.Tensor]] = {}


def _sh_band_rotations(degree: int, r: torch.Tensor) -> list[torch.Tensor]:
    """Per band 1..degree, X with Y_l(rᵀ d) = Y_l(d) X. Cached per rotation: LAPACK's least squares can differ in
    the last bit with the thread count it happens to get, and a redo must equal the first apply bit for bit."""
    key = (degree, r.numpy().tobytes())
    if key not in _SH_ROTATIONS:
        from render.splat.sh import sh_basis

        k = torch.arange(64, dtype=torch.float64) + 0.5          # a Fibonacci sphere
        z = 1 - 2 * k / 64
        phi = math.pi * (1 + 5 ** 0.5) * k
        d = torch.stack([(1 - z * z).sqrt() * phi.cos(), (1 - z * z).sqrt() * phi.sin(), z], -1)
        a, b = sh_basis(d, degree), sh_basis(d @ r, degree)     # rows: Y(d) and Y(rᵀ d)
        if len(_SH_ROTATIONS) >= 256:
            _SH_ROTATIONS.pop(next(iter(_SH_ROTATIONS)))
        cols = [slice(band * band, (band + 1) ** 2) for band in range(1, degree + 1)]
        _SH_ROTATIONS[key] = [torch.linalg.lstsq(a[:, c], b[:, c]).solution for c in cols]
    return _SH_ROTATIONS[key]


def _quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product a ⊗ b for (w, x, y, z) quaternions (a (4,), b (n, 4))."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], -1)


# ----- screen-space selection (what the Splat view's rectangle and lasso resolve to) -------------------------------
def screen_select(means: torch.Tensor, camera: "Camera", *, rect: tuple[float, float, float, float] | None = None,
                  polygon: Any = None, radii: torch.Tensor | None = None) -> torch.Tensor:
    """Indices of the Gaussians in front of ``camera`` whose projected centre falls inside ``rect`` (x0, y0, x1, y1
    in the camera's pixels, any corner order) or inside the lasso ``polygon`` ((K, 2) pixels, even-odd rule). With
    ``radii`` (world units per Gaussian, e.g. 3 × the largest scale) a Gaussian is also taken when its footprint,
    the disc of radius ``radii · f / z`` pixels, touches the shape. The result goes into :class:`SelectIndices`, so
    a recorded edit replays exactly without the camera."""
    import numpy as np

    if (rect is None) == (polygon is None):
        raise EditError("screen selection needs a rectangle or a polygon")
    uv, z = camera.project(means.detach().cpu().numpy())
    front = z > camera.near
    rad = None
    if radii is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            rad = np.where(front, radii.detach().cpu().numpy().astype(np.float64) * camera.fx / z, 0.0)
    if rect is not None:
        x0, y0, x1, y1 = (float(v) for v in rect)
        x0, x1, y0, y1 = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
        if rad is None:
            hit = front & (uv[:, 0] >= x0) & (uv[:, 0] <= x1) & (uv[:, 1] >= y0) & (uv[:, 1] <= y1)
        else:  # distance from the centre to the rectangle (0 inside) within the footprint's radius
            dx = np.maximum(np.maximum(x0 - uv[:, 0], uv[:, 0] - x1), 0.0)
            dy = np.maximum(np.maximum(y0 - uv[:, 1], uv[:, 1] - y1), 0.0)
            hit = front & (dx * dx + dy * dy <= rad * rad)
        return torch.from_numpy(np.nonzero(hit)[0])
    poly = np.asarray(polygon, dtype=np.float64)
    if poly.ndim != 2 or poly.shape[1] != 2 or len(poly) < 3 or not np.all(np.isfinite(poly)):
        raise EditError(f"a lasso needs at least 3 finite (x, y) points, got shape {poly.shape}")
    lo, hi = poly.min(0), poly.max(0)
    pad = rad[:, None] if rad is not None else 0.0
    cand = np.nonzero(front & np.all(uv >= lo - pad, 1) & np.all(uv <= hi + pad, 1))[0]
    x, y = uv[cand, 0].astype(np.float32), uv[cand, 1].astype(np.float32)
    inside = np.zeros(len(cand), dtype=bool)
    edges = list(zip(poly, np.roll(poly, -1, axis=0)))
    # even-odd rule: count the edges a ray to +x crosses. An edge (a, b) is crossed at height y iff
    # min(ay, by) <= y < max(ay, by); the crossing's x is computed only for the points in that band.
    for (ax, ay), (bx, by) in ((a.astype(np.float32), b.astype(np.float32)) for a, b in edges):
        if ay == by:
            continue
        band = np.nonzero((y >= min(ay, by)) & (y < max(ay, by)))[0]
        xc = ax + (y[band] - ay) * ((bx - ax) / (by - ay))
        inside[band] ^= x[band] < xc
    if rad is not None:  # outside, but the footprint reaches an edge
        r2 = rad[cand] ** 2
        p = uv[cand]
        for a, b in edges:
            ab = b - a
            t = np.clip(((p - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
            d = p - (a + t[:, None] * ab)
            inside |= (d * d).sum(1) <= r2
    return torch.from_numpy(cand[inside])


# ----- the session ----------------------------------------------------------------------------------------------------
def locked(method):
    """Run under the session's lock: the UI thread edits while a render thread reads the model for display."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self.lock:
            return method(self, *args, **kwargs)
    return run


class EditSession:
    """A model being edited, its masks, and the history (undo drops the oldest entries beyond ``max_history_mb``)."""

    def __init__(self, model: GaussianModel, max_history_mb: float = 512.0) -> None:
        self.model = model
        self.n = model.num_gaussians
        self.alive = torch.ones(self.n, dtype=torch.bool)
        self.selection = torch.zeros(self.n, dtype=torch.bool)
        self.history: list[tuple[Op, Delta]] = []
        self.position = 0                  # history[:position] is applied; the rest can be redone
        self.max_history_bytes = max_history_mb * 2 ** 20
        self.revision = 0                  # bumped on every change: a renderer re-reads the model
        self.lock = threading.RLock()

    def selected(self) -> torch.Tensor:
        """Indices of the selected Gaussians that are not deleted."""
        return torch.nonzero(self.selection & self.alive).flatten()

    @property
    def counts(self) -> tuple[int, int]:
        """(alive, selected)."""
        return int(self.alive.sum()), int((self.selection & self.alive).sum())

    @locked
    def apply(self, op: Op) -> Delta:
        """Apply ``op`` (raises :class:`EditError`, changing nothing, when it cannot); clears the redo tail."""
        if op.needs_selection and not bool((self.selection & self.alive).any()):
            raise EditError(f"{op.kind}: the selection is empty; select Gaussians first")
        before = self._before_apply(op)
        delta = op.apply(self)
        del self.history[self.position:]
        self.history.append((op, delta))
        self._after_apply(before)
        self.position = len(self.history)
        self._bound()
        self.revision += 1
        return delta

    def _before_apply(self, op: Op) -> Any:
        """Hook (a stack's levels): what must be read before ``op`` changes the model."""
        return None

    def _after_apply(self, before: Any) -> None:
        """Hook: runs once the new history entry is appended."""

    @locked
    def undo(self) -> Op | None:
        if self.position == 0:
            return None
        self.position -= 1
        op, delta = self.history[self.position]
        self.revert(delta)
        self.revision += 1
        return op

    def revert(self, delta: Delta) -> None:
        """Put back what ``delta`` changed (mask flips are their own inverse; rows are restored bit-exactly)."""
        for name, idx in delta.flipped.items():
            mask = getattr(self, name)
            mask[idx] = ~mask[idx]
        with torch.no_grad():
            for name, (idx, old) in delta.rows.items():
                getattr(self.model, name).data[idx] = old

    @locked
    def redo(self) -> Op | None:
        if self.position == len(self.history):
            return None
        op = self.history[self.position][0]
        delta = op.apply(self)
        self.history[self.position] = (op, delta)
        self.position += 1
        self.revision += 1
        return op

    def _bound(self) -> None:
        total = sum(d.nbytes for _, d in self.history)
        while len(self.history) > 1 and total > self.max_history_bytes:
            total -= self.history.pop(0)[1].nbytes
            self.position -= 1

    def labels(self) -> list[str]:
        """The history panel's lines (applied ones first; the redoable tail after ``position``)."""
        return [op.label() for op, _ in self.history]

    def export_ops(self) -> list[dict[str, Any]]:
        """The applied operations as ops-file entries (``replay`` or ``main.py edit gaussians --ops``)."""
        return [op.to_dict() for op, _ in self.history[:self.position]]

    @locked
    def replay(self, entries: list[Any]) -> int:
        """Parse every entry first (a bad one changes nothing), then apply them in order; an entry that cannot
        apply undoes the ones applied before it and raises its line with its index."""
        ops = []
        for i, e in enumerate(entries):
            try:
                ops.append(Op.from_dict(e))
            except EditError as err:
                raise EditError(f"operation {i}: {err}") from None
        done = 0
        try:
            for op in ops:
                self.apply(op)
                done += 1
        except EditError as err:
            for _ in range(done):
                self.undo()
            del self.history[self.position:]
            raise EditError(f"operation {done}: {err}") from None
        return done

    @locked
    def display(self, tint: bool = True) -> GaussianModel:
        """What a view draws: the model without the deleted Gaussians and, with ``tint``, the selection blended
        towards :data:`SELECTION_TINT` (a new model; the session's own is only read)."""
        alive, sel = self.alive, self.selection & self.alive
        if not tint or not bool(sel.any()):
            return self.model if bool(alive.all()) else self.model.subset(alive)
        out = self.model.subset(alive)
        hit = sel[alive]
        with torch.no_grad():
            rgb = out.sh_dc.data[hit] * SH_C0 + 0.5
            rgb = (1 - TINT_WEIGHT) * rgb + TINT_WEIGHT * torch.tensor(SELECTION_TINT)
            out.sh_dc.data[hit] = (rgb - 0.5) / SH_C0
            out.sh_rest.data[hit] *= 1 - TINT_WEIGHT
        return out

    @locked
    def edited(self) -> GaussianModel:
        """The model without the deleted Gaussians (a new model; the session keeps editing its own)."""
        return self.model.subset(self.alive) if not bool(self.alive.all()) else self.model.clone()
