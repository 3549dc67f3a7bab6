"""One floater removed from a whole Mipmap-GS stack, seen at 1× and ⅛: the splat editor's across-scales check.

A floater (a cluster of large, faint Gaussians between a test camera and the object) is added to a trained base;
Mipmap-GS levels are finetuned from it as usual (densification on, pseudo ground truth rendered by the base, so
the levels learn the floater too). The stack is opened the way the Splat view opens it, the floater is selected
once on the base (a sphere) and deleted; the script counts the Gaussians left inside the floater on every level
and writes a before/after figure (columns) at 1× and ⅛ (rows; the ⅛ panel is drawn at ⅛ resolution and shown
enlarged).

    python3 bench/edit_floater.py --ply BASE.ply --dataset SCENE --out DIR [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ply", required=True, help="a trained 3DGS base model")
    ap.add_argument("--dataset", required=True, help="its dataset (for the finetuning cameras)")
    ap.add_argument("--out", required=True, help="a folder for the stack and the figure")
    ap.add_argument("--scales", default="1/8,1/2")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--json", default="")
    args = ap.parse_args()

    import imageio.v3 as iio
    import numpy as np
    import torch

    import main as cli
    from methods.datasets.test_views import MultiscaleTestViews
    from methods.gaussians import edit as E
    from methods.gaussians.live_source import SplatSource, gaussian_framing
    from methods.gaussians.model import GaussianModel, rgb_to_sh_dc
    from methods.gaussians.ply import load_ply, save_ply
    from render.live import RenderRequest

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = load_ply(args.ply)
    views = MultiscaleTestViews(args.dataset, True)
    cam = views.at(views.nearest_scale(1.0)).cameras[0]
    frame = gaussian_framing(base)
    # the floater: 60 large faint grey Gaussians 40 % of the way from the object's centre to the camera
    centre = np.asarray(frame.center) + 0.4 * (cam.position - np.asarray(frame.center))
    r = 0.08 * frame.radius
    g = torch.Generator().manual_seed(0)
    pts = torch.tensor(centre, dtype=torch.float32) + r * 0.5 * torch.randn(60, 3, generator=g)
    blob = GaussianModel.from_points(pts, torch.full((60, 3), 0.6), sh_degree=base.max_sh_degree)
    with torch.no_grad():
        blob.log_scales[:] = math.log(0.5 * r)
        blob.logit_opacities[:] = torch.logit(torch.tensor(0.25))
        blob.sh_dc[:] = rgb_to_sh_dc(torch.full((60, 3), 0.6))[:, None, :]
    with_floater = GaussianModel(**{k: torch.cat([getattr(base, k).detach(), getattr(blob, k).detach()])
                                    for k in ("means", "quats", "log_scales", "logit_opacities", "sh_dc", "sh_rest")})
    ply = save_ply(with_floater, out / "base_with_floater.ply")
    stack_dir = out / "stack"
    if cli.main(["finetune", "gaussians", "--ply", str(ply), "--dataset", args.dataset, "--scales", args.scales,
                 "--method", "3dgs", "--pseudo-gt-out", "area", "--iterations", str(args.iterations),
                 "--out", str(stack_dir)]) != 0:
        return 1

    src = SplatSource()
    src.set_stack(str(stack_dir / "mipmap.json"))
    s = src.start_editing(wait=True)
    sphere = E.SelectSphere(center=tuple(float(v) for v in centre), radius=2.5 * r)

    def inside(model) -> int:
        return int(sphere.criterion(E.EditSession(model)).sum())

    def draw(rate: float) -> np.ndarray:
        c = cam.scaled(rate) if rate != 1 else cam
        o = src.Options(backend="torch", stack="nearest", white_background=True, edit_revision=s.revision,
                        show_selection=False, filter="3dgs", use_3d_filter=False)
        img = src.render(RenderRequest(width=c.width, height=c.height, zoom=rate, camera=c, options=o)).image
        k = cam.width // c.width
        return np.repeat(np.repeat(img[..., :3], k, 0), k, 1)

    levels = {1.0: s} | {sc: lv for sc, lv, _ in s.levels}
    before = {sc: inside(lv.display(tint=False)) for sc, lv in levels.items()}
    shots = {"before": {rate: draw(rate) for rate in (1.0, 0.125)}}
    s.apply(sphere)
    s.apply(E.Delete())
    after = {sc: inside(lv.display(tint=False)) for sc, lv in levels.items()}
    shots["after"] = {rate: draw(rate) for rate in (1.0, 0.125)}
    changed = {rate: float((np.abs(shots["after"][rate] - shots["before"][rate]).max(-1) > 0.05).mean())
               for rate in (1.0, 0.125)}
    rows = [shots["before"][1.0], shots["after"][1.0]], [shots["before"][0.125], shots["after"][0.125]]
    pad = np.ones((cam.height, 6, 3), np.float32)
    grid = np.concatenate([np.concatenate([a, pad, b], 1) for a, b in rows], 0)
    up = max(1, 256 // cam.width)  # small datasets: enlarge the figure (nearest, pixels stay visible)
    grid = np.repeat(np.repeat(grid, up, 0), up, 1)
    figure = out / "floater_before_after.png"
    iio.imwrite(figure, (np.clip(grid, 0, 1) * 255).astype(np.uint8))

    print(f"floater: 60 Gaussians, radius {r:.3f}, at {np.round(centre, 3).tolist()}; stack {args.scales}, "
          f"{args.iterations} finetuning steps per level\n")
    print("| level | Gaussians | matched to the base | in the floater before | after delete |\n|---|---|---|---|---|")
    corr = {sc: c for sc, _, c in s.levels}
    for sc, lv in sorted(levels.items()):
        how = corr[sc].summary() if sc in corr else "(the base)"
        print(f"| x{sc:g} | {lv.n:,} | {how} | {before[sc]} | {after[sc]} |")
    print(f"\npixels changed by the delete: {changed[1.0]:.1%} at 1x, {changed[0.125]:.1%} at 1/8 · figure {figure}")
    if args.json:
        Path(args.json).write_text(json.dumps({"before": {str(k): v for k, v in before.items()},
                                               "after": {str(k): v for k, v in after.items()},
                                               "changed": {str(k): v for k, v in changed.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
