"""The 3D Gaussian scene representation (3DGS) with Mip-Splatting's optional 3D smoothing filter.

Parameters are stored pre-activation, exactly as the reference implementation and its PLY files store them, so that
loading, training and saving never re-parameterise (which would break bit-exact PLY round trips and the meaning of
the per-group learning rates):

- ``means`` (N,3) world positions, used as is;
- ``quats`` (N,4) raw (w,x,y,z) quaternions, normalised only when used;
- ``log_scales`` (N,3), scale = exp(·);
- ``logit_opacities`` (N,), opacity = sigmoid(·);
- ``sh_dc`` (N,1,3) and ``sh_rest`` (N,(d+1)²−1,3) spherical-harmonic coefficients; colour = SH(dir) + 0.5.

``filter_3d`` (N,) is a per-Gaussian standard deviation (Mip-Splatting's 3D filter, see ``filter3d.py``). It depends
on the training cameras only, so it is a buffer, not a parameter.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

# One copy of the splat math, in the lower layer; re-exported because trainers and tests import it from here.
from render.splat.projection import quat_to_rotmat, rotmat_to_quat
from render.splat.sh import SH_C0
from render.splat.sh import num_sh_bases as num_sh_coeffs
from render.tensors import to_numpy

if TYPE_CHECKING:
    from render.camera import Camera

__all__ = [
    "SH_C0",
    "PARAM_NAMES",
    "GaussianModel",
    "num_sh_coeffs",
    "rgb_to_sh_dc",
    "sh_dc_to_rgb",
    "quat_to_rotmat",
    "rotmat_to_quat",
    "knn_mean_sq_dist",
]

# The attribute names double as the optimizer's param-group names (densify.py relies on that).
PARAM_NAMES: tuple[str, ...] = ("means", "quats", "log_scales", "logit_opacities", "sh_dc", "sh_rest")
# 3DGS clamps the mean squared neighbour distance here so duplicate points do not get log(0) scales.
MIN_KNN_SQ_DIST = 1e-7
INIT_OPACITY = 0.1


def rgb_to_sh_dc(rgb: torch.Tensor) -> torch.Tensor:
    return (rgb - 0.5) / SH_C0


def sh_dc_to_rgb(dc: torch.Tensor) -> torch.Tensor:
    return dc * SH_C0 + 0.5


def knn_mean_sq_dist(points: torch.Tensor, k: int = 3, *, chunk: int = 1024) -> torch.Tensor:
    """Exact mean squared distance from each point to its ``k`` nearest *other* points (duplicates count as 0).

    Uses scipy's KD-tree when available (100k points in well under a second); otherwise chunked ``torch.cdist``,
    which is exact but O(N²). With fewer than k+1 points, all other points are used; a lone point gets 0.
    """
    pts = points.detach().to("cpu", torch.float64)
    n = pts.shape[0]
    kk = min(k, n - 1)
    if kk <= 0:
        return torch.zeros(n, dtype=torch.float64)
    try:
        from scipy.spatial import cKDTree
    except ImportError:  # pragma: no cover - scipy ships with scikit-image, a dependency
        return _knn_torch(pts, kk, chunk)
    dist, _ = cKDTree(to_numpy(pts)).query(to_numpy(pts), k=kk + 1)
    # Column 0 is normally the point itself, but with exact duplicates the tree may return the twin first; both are
    # at distance 0, so dropping column 0 always leaves the k nearest others.
    d = torch.from_numpy(np.ascontiguousarray(dist[:, 1:]))
    return (d * d).mean(dim=1)


def _knn_torch(pts: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Chunked brute-force kNN (the fallback of :func:`knn_mean_sq_dist`)."""
    n = pts.shape[0]
    out = torch.empty(n, dtype=torch.float64)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        d2 = torch.cdist(pts[s:e], pts).square_()
        d2[torch.arange(e - s), torch.arange(s, e)] = float("inf")  # exclude self by index, not by distance
        out[s:e] = d2.topk(k, dim=1, largest=False).values.mean(dim=1)
    return out


def _as_tensor(x: Any, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(dtype)
    return torch.as_tensor(np.asarray(x), dtype=dtype)


class GaussianModel:
    """A set of N 3D Gaussians; see the module docstring for the parameterisation."""

    means: torch.nn.Parameter
    quats: torch.nn.Parameter
    log_scales: torch.nn.Parameter
    logit_opacities: torch.nn.Parameter
    sh_dc: torch.nn.Parameter
    sh_rest: torch.nn.Parameter

    def __init__(self, means: torch.Tensor, quats: torch.Tensor, log_scales: torch.Tensor,
                 logit_opacities: torch.Tensor, sh_dc: torch.Tensor, sh_rest: torch.Tensor, *,
                 max_sh_degree: int | None = None, active_sh_degree: int | None = None,
                 filter_3d: torch.Tensor | None = None) -> None:
        n = means.shape[0]
        k_rest = sh_rest.shape[1] if sh_rest.ndim == 3 else -1
        degree = int(round(math.sqrt(k_rest + 1))) - 1 if k_rest >= 0 else -1
        if max_sh_degree is None:
            max_sh_degree = degree
        expected = {
            "means": (n, 3), "quats": (n, 4), "log_scales": (n, 3), "logit_opacities": (n,),
            "sh_dc": (n, 1, 3), "sh_rest": (n, num_sh_coeffs(max_sh_degree) - 1, 3),
        }
        given = dict(zip(PARAM_NAMES, (means, quats, log_scales, logit_opacities, sh_dc, sh_rest)))
        rows = {k: (v.shape[0] if v.ndim else None) for k, v in given.items()}
        if filter_3d is not None:
            rows["filter_3d"] = filter_3d.shape[0] if filter_3d.ndim else None
        if len(set(rows.values())) > 1:
            raise ValueError("GaussianModel: parameters disagree on the number of Gaussians ("
                             + ", ".join(f"{k} {v}" for k, v in rows.items()) + ")")
        bad = [f"{k} is {tuple(v.shape)}, expected {expected[k]}" for k, v in given.items()
               if tuple(v.shape) != expected[k]]
        if not 0 <= max_sh_degree <= 3:
            bad.insert(0, f"max_sh_degree must be 0..3, got {max_sh_degree}")
        if filter_3d is not None and tuple(filter_3d.shape) != (n,):
            bad.append(f"filter_3d is {tuple(filter_3d.shape)}, expected {(n,)}")
        if bad:
            raise ValueError("GaussianModel: " + "; ".join(bad))
        for name, value in given.items():
            setattr(self, name, torch.nn.Parameter(value.detach().to(torch.float32).contiguous()))
        self.max_sh_degree = int(max_sh_degree)
        self.active_sh_degree = self.max_sh_degree if active_sh_degree is None else int(active_sh_degree)
        if not 0 <= self.active_sh_degree <= self.max_sh_degree:
            raise ValueError(f"active_sh_degree {self.active_sh_degree} outside 0..{self.max_sh_degree}")
        self.filter_3d: torch.Tensor | None = (
            None if filter_3d is None else filter_3d.detach().to(self.means.device, torch.float32).contiguous())

    # ----- construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_points(cls, xyz: Any, rgb: Any, *, sh_degree: int = 3) -> "GaussianModel":
        """The 3DGS initialisation from a point cloud: isotropic scale from the 3 nearest neighbours, identity
        rotation, opacity 0.1, DC from the colour, higher bands 0. ``rgb`` is float in [0,1] or uint8."""
        rgb_np = np.asarray(rgb.detach().cpu() if isinstance(rgb, torch.Tensor) else rgb)
        colors = torch.as_tensor(rgb_np.astype(np.float32) / 255.0 if rgb_np.dtype == np.uint8
                                 else rgb_np.astype(np.float32))
        means = _as_tensor(xyz)
        if means.ndim != 2 or means.shape[1] != 3 or colors.shape != means.shape:
            raise ValueError(f"from_points needs xyz and rgb of shape (N,3), got {tuple(means.shape)} "
                             f"and {tuple(colors.shape)}")
        n = means.shape[0]
        dist2 = knn_mean_sq_dist(means, 3).clamp_min(MIN_KNN_SQ_DIST)
        log_scales = torch.log(torch.sqrt(dist2)).to(torch.float32)[:, None].repeat(1, 3)
        quats = torch.zeros(n, 4)
        quats[:, 0] = 1.0
        logit = torch.full((n,), math.log(INIT_OPACITY / (1 - INIT_OPACITY)))
        sh_dc = rgb_to_sh_dc(colors)[:, None, :]
        sh_rest = torch.zeros(n, num_sh_coeffs(sh_degree) - 1, 3)
        return cls(means, quats, log_scales, logit, sh_dc, sh_rest, max_sh_degree=sh_degree, active_sh_degree=0)

    @classmethod
    def random_in_box(cls, n: int, lo: float | Sequence[float] = -1.3, hi: float | Sequence[float] = 1.3,
                      seed: int = 0, sh_degree: int = 3) -> "GaussianModel":
        """The Blender-scene initialisation (no SfM points): n uniform points in the box, SH DC uniform in
        [0, 1/255] (so colours start ≈ mid-grey), then the same kNN scales and opacity as :meth:`from_points`."""
        g = torch.Generator().manual_seed(int(seed))
        lo_t = torch.as_tensor(lo, dtype=torch.float32).expand(3)
        hi_t = torch.as_tensor(hi, dtype=torch.float32).expand(3)
        xyz = lo_t + (hi_t - lo_t) * torch.rand(n, 3, generator=g)
        dc = torch.rand(n, 3, generator=g) / 255.0
        model = cls.from_points(xyz, sh_dc_to_rgb(dc), sh_degree=sh_degree)
        with torch.no_grad():
            model.sh_dc.copy_(dc[:, None, :])  # exact values, not the rgb round trip
        return model

    # ----- activated views ----------------------------------------------------------------------------------------
    @property
    def num_gaussians(self) -> int:
        return int(self.means.shape[0])

    def __len__(self) -> int:
        return self.num_gaussians

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def scales(self) -> torch.Tensor:
        return torch.exp(self.log_scales)

    @property
    def opacities(self) -> torch.Tensor:
        return torch.sigmoid(self.logit_opacities)

    @property
    def rotations(self) -> torch.Tensor:
        """Unit wxyz quaternions."""
        return F.normalize(self.quats, dim=-1)

    def sh(self) -> torch.Tensor:
        """(N, (max_degree+1)², 3) coefficients, DC first, as the rasterizer consumes them."""
        return torch.cat([self.sh_dc, self.sh_rest], dim=1)

    def filter_coefficients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(s′ (N,3), opacity factor (N,)) of the 3D filter: s′ = √(s²+f²) and √(Πs²/Π(s²+f²)); the factor
        conserves each Gaussian's integral, so filtering only blurs, it does not brighten."""
        if self.filter_3d is None:
            raise ValueError("this model has no 3D filter; compute one with methods.gaussians.compute_3d_filter")
        s2 = torch.square(self.scales)
        s2f = s2 + torch.square(self.filter_3d)[:, None]
        return torch.sqrt(s2f), torch.sqrt(s2.prod(dim=1) / s2f.prod(dim=1))

    def effective(self, use_3d_filter: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(scales (N,3), opacities (N,)) as rendered. With ``use_3d_filter`` and a filter present, Mip-Splatting's
        filtered values; a model without a filter (e.g. a plain 3DGS PLY) renders unfiltered either way."""
        if not use_3d_filter or self.filter_3d is None:
            return self.scales, self.opacities
        scales, coef = self.filter_coefficients()
        return scales, self.opacities * coef

    # ----- rendering ----------------------------------------------------------------------------------------------
    def render(self, camera: "Camera", *, filter: str = "mip", use_3d_filter: bool = True,
               background: Sequence[float] = (0.0, 0.0, 0.0), sh_degree: int | None = None,
               backend: str | None = None, counts: bool = True) -> Any:
        """Rasterize with ``render.splat.rasterize_camera`` (imported lazily: methods stay importable and testable
        without the rasterizer). ``sh_degree`` defaults to the active degree; ``backend``/``counts`` as in
        :func:`render.splat.rasterize`; returns its ``RasterOutput``. Differentiable; wrap display-only renders
        in ``torch.no_grad()`` to skip building the graph (and to reuse the GL backend's upload)."""
        from render.splat import rasterize_camera

        degree = self.active_sh_degree if sh_degree is None else int(sh_degree)
        if not 0 <= degree <= self.max_sh_degree:
            raise ValueError(f"sh_degree {degree} outside 0..{self.max_sh_degree}")
        rotations, scales, opacities, sh = self._render_inputs(use_3d_filter)
        return rasterize_camera(self.means, rotations, scales, opacities, sh, camera=camera, sh_degree=degree,
                                filter=filter, background=tuple(background), backend=backend, counts=counts)

    def _render_inputs(self, use_3d_filter: bool) -> tuple[torch.Tensor, ...]:
        """(rotations, scales, opacities, SH) as rendered. Without autograd they are cached until a parameter
        changes (identity and in-place version), so repeated display renders pass the *same* tensors and the GL
        backend uploads a static model once."""
        def compute() -> tuple[torch.Tensor, ...]:
            scales, opacities = self.effective(use_3d_filter)
            return self.rotations, scales, opacities, self.sh()

        if torch.is_grad_enabled():
            return compute()
        sources = tuple(self.params().values()) + ((self.filter_3d,) if self.filter_3d is not None else ())
        key = (use_3d_filter, tuple(t._version for t in sources))
        cached = getattr(self, "_display_inputs", None)
        if cached is not None and cached[0] == key and all(a is b for a, b in zip(cached[1], sources)) \
                and len(cached[1]) == len(sources):
            return cached[2]
        out = compute()
        self._display_inputs = (key, sources, out)
        return out

    # ----- parameters ---------------------------------------------------------------------------------------------
    def params(self) -> dict[str, torch.nn.Parameter]:
        """Name -> Parameter in :data:`PARAM_NAMES` order (one optimizer group each)."""
        return {name: getattr(self, name) for name in PARAM_NAMES}

    def set_params(self, tensors: dict[str, torch.Tensor]) -> None:
        """Replace parameters (all with the same new N); plain tensors are wrapped as Parameters."""
        for name, t in tensors.items():
            if name not in PARAM_NAMES:
                raise KeyError(f"unknown Gaussian parameter {name!r}")
            setattr(self, name, t if isinstance(t, torch.nn.Parameter) else torch.nn.Parameter(t.detach()))

    def requires_grad_(self, flag: bool = True) -> "GaussianModel":
        for p in self.params().values():
            p.requires_grad_(flag)
        return self

    def to(self, device: str | torch.device) -> "GaussianModel":
        """A copy on ``device`` (a new model: Parameters held by an optimizer are not moved under it)."""
        return self._rebuild(lambda t: t.detach().to(device))

    def clone(self) -> "GaussianModel":
        """A deep copy with fresh Parameters."""
        return self._rebuild(lambda t: t.detach().clone())

    def subset(self, mask: torch.Tensor) -> "GaussianModel":
        """The Gaussians selected by a boolean (N,) mask or an index tensor, as a new model."""
        mask = torch.as_tensor(mask, device=self.device)
        if mask.dtype == torch.bool and tuple(mask.shape) != (self.num_gaussians,):
            raise ValueError(f"subset mask is {tuple(mask.shape)}, expected ({self.num_gaussians},)")
        return self._rebuild(lambda t: t.detach()[mask].clone())

    def _rebuild(self, fn) -> "GaussianModel":
        p = {k: fn(v) for k, v in self.params().items()}
        return GaussianModel(**p, max_sh_degree=self.max_sh_degree, active_sh_degree=self.active_sh_degree,
                             filter_3d=None if self.filter_3d is None else fn(self.filter_3d))

    def oneup_sh_degree(self) -> None:
        """Enable one more SH band (3DGS does this every 1000 iterations)."""
        self.active_sh_degree = min(self.active_sh_degree + 1, self.max_sh_degree)

    # ----- checkpoints --------------------------------------------------------------------------------------------
    def to_payload(self) -> dict:
        """Plain tensors and ints for ``methods.io.save_checkpoint`` (loads with ``weights_only=True``)."""
        payload: dict[str, Any] = {k: v.detach().cpu().clone() for k, v in self.params().items()}
        payload["max_sh_degree"] = self.max_sh_degree
        payload["active_sh_degree"] = self.active_sh_degree
        if self.filter_3d is not None:
            payload["filter_3d"] = self.filter_3d.detach().cpu().clone()
        return payload

    @classmethod
    def from_payload(cls, payload: dict, *, device: str | torch.device = "cpu") -> "GaussianModel":
        """Inverse of :meth:`to_payload`; a missing key or a wrong shape raises ``CheckpointError`` (one line)."""
        from methods.io import CheckpointError

        missing = [k for k in (*PARAM_NAMES, "max_sh_degree") if k not in payload]
        if missing:
            raise CheckpointError(f"Gaussian payload is missing {', '.join(missing)}")
        bad = [k for k in PARAM_NAMES if not isinstance(payload[k], torch.Tensor)]
        if bad:
            raise CheckpointError(f"Gaussian payload entries are not tensors: {', '.join(bad)}")
        f3d = payload.get("filter_3d")
        try:
            return cls(*(payload[k].to(device) for k in PARAM_NAMES), max_sh_degree=int(payload["max_sh_degree"]),
                       active_sh_degree=payload.get("active_sh_degree"),
                       filter_3d=None if f3d is None else torch.as_tensor(f3d).to(device))
        except ValueError as e:
            raise CheckpointError(str(e)) from None

    def __repr__(self) -> str:
        f3d = "yes" if self.filter_3d is not None else "no"
        return (f"GaussianModel(n={self.num_gaussians}, sh_degree={self.active_sh_degree}/{self.max_sh_degree}, "
                f"filter_3d={f3d})")
