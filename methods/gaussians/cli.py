"""Headless commands of the Gaussian family: ``train gaussians``, ``eval gaussians``, ``render gaussians`` and
``export-demo-ply``. Choices come from the config registries (:mod:`methods.gaussians.config`, the synthetic
scene presets); the trainer, the benchmark and the rasterizer are imported inside the run functions."""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from assets.synthetic_scene import PRESETS as SCENE_PRESETS
from methods.cli import comma_list, non_negative_int, optional_size_arg, positive_float, positive_int
from methods.gaussians.config import DEVICES, METHODS, TRAIN_PRESETS
from methods.gaussians.render_cli import BACKEND_CHOICES, BACKGROUNDS, FILTERS

DEFAULT_CONFIG = "cpu_small"
_METHOD_NAMES = ", ".join(f"{k} ({m.label})" for k, m in METHODS.items())


# ----- shared by train and eval ---------------------------------------------------------------------------------
def add_data_arguments(p: argparse.ArgumentParser, with_config: bool = True) -> None:
    p.add_argument("--dataset", default="", metavar="FOLDER",
                   help="a nerf_synthetic-format dataset folder (default: the generated --preset scene)")
    p.add_argument("--preset", default="default", choices=tuple(SCENE_PRESETS),
                   help="generated synthetic scene used when --dataset is not given (made on first use)")
    if with_config:
        p.add_argument("--config", default=DEFAULT_CONFIG, choices=tuple(TRAIN_PRESETS), help="training preset")
        p.add_argument("--iterations", type=non_negative_int, default=0,
                       help="train this many iterations, scaling the preset's schedule to match (0 = the preset's)")
    p.add_argument("--black-background", action="store_true",
                   help="composite on black instead of white (must match how the dataset was made)")


def _dataset_root(args: argparse.Namespace) -> Path:
    if args.dataset:
        root = Path(args.dataset).expanduser()
        if not root.is_dir():
            raise ValueError(f"--dataset {root}: folder not found")
        return root
    from methods.datasets import ensure_dataset

    return ensure_dataset(args.preset)


def _config(args: argparse.Namespace, **changes):
    from methods.gaussians.config import TrainConfig

    if args.black_background:
        changes["white_background"] = False
    cfg = TrainConfig.preset(args.config, preview_interval_s=float("inf"), **changes)  # a progress bar shows no images
    return cfg.scaled_to(args.iterations) if args.iterations else cfg


# ----- train gaussians ------------------------------------------------------------------------------------------
def add_train_arguments(p: argparse.ArgumentParser) -> None:
    add_data_arguments(p)
    p.add_argument("--variant", "--method", dest="variant", default="mip", choices=tuple(METHODS),
                   help=f"which method to train: {_METHOD_NAMES}")
    p.add_argument("--scale", type=positive_float, default=1.0,
                   help="dataset scale to train at (e.g. 0.125 = 1/8 of the full resolution)")
    p.add_argument("--out", default="", metavar="FOLDER",
                   help="output folder for checkpoint and PLYs (default: <cache>/runs/gaussians-<method>-<time>)")
    p.add_argument("--resume", default="", metavar="CHECKPOINT", help="continue from this checkpoint.pt")
    p.add_argument("--device", default="auto", choices=DEVICES,
                   help="where to train: auto = CUDA when torch sees a GPU (then the CUDA rasterizer), else CPU")


def run_train(args: argparse.Namespace) -> int:
    from methods.gaussians.train import GaussianTrainer
    from methods.jobs import run_headless

    cfg = _config(args, method=args.variant, out_dir=args.out, train_scale=args.scale, device=args.device)
    trainer = GaussianTrainer.from_path(_dataset_root(args), cfg, resume=args.resume or None)
    s = run_headless(trainer)
    held = (f", held-out {s['eval_split']} PSNR {s['psnr']:.2f} dB / SSIM {s['ssim']:.3f}" if "psnr" in s
            else "")
    state = "cancelled at" if s["cancelled"] else "trained"
    print(f"{s['method']}: {state} {s['iterations']} iterations in {s['seconds']:.0f} s, "
          f"{s['n_gaussians']} Gaussians{held}")
    for key in ("checkpoint", "ply", "ply_baked"):
        if key in s:
            print(f"  {key:10s} {s[key]}")
    return 0


# ----- eval gaussians -------------------------------------------------------------------------------------------
def _settings() -> tuple[str, ...]:
    from methods.gaussians.stmt import SETTINGS

    return tuple(SETTINGS)


def method_list(text: str) -> tuple[str, ...]:
    """argparse ``type=`` for --methods: base methods and Mipmap-GS rows (``mipmap-3dgs-area-free`` …)."""
    from methods.gaussians.mipmap import MipmapVariant

    items = tuple(v.strip() for v in text.split(",") if v.strip())
    if not items:
        raise argparse.ArgumentTypeError(f"expected methods such as 3dgs,mip,mipmap-3dgs; got {text!r}")
    for m in items:
        if m not in METHODS:
            try:
                MipmapVariant.parse(m)
            except ValueError as e:
                raise argparse.ArgumentTypeError(f"{e} (base methods: {', '.join(METHODS)})") from None
    return items


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    from methods.gaussians.mipmap import pseudo_gt_names

    add_data_arguments(p)
    p.add_argument("--methods", type=method_list, default=",".join(METHODS),
                   help=f"comma-separated methods to compare: {_METHOD_NAMES}, and Mipmap-GS rows "
                        "mipmap-3dgs / mipmap-mip (the base finetuned per test scale on pseudo-GT) with options "
                        "appended: a pseudo-GT (area, oracle, ...), poses (test, train, free), source (render, "
                        "real = the training images), position LR (released, schedule), densify / nodensify, "
                        "reset (the release's opacity reset at step 2); "
                        "e.g. mipmap-3dgs-area-free")
    p.add_argument("--direction", default="", choices=("", "out", "in", "both"),
                   help="shorthand for --settings: out = zoom_out, in = zoom_in, both")
    p.add_argument("--pseudo-gt-out", default="bilinear", choices=pseudo_gt_names(zoom_in=False),
                   help="Mipmap-GS zoom-out pseudo-GT (bilinear as released, area = box filter, oracle = true GT)")
    p.add_argument("--pseudo-gt-in", default="bicubic", choices=pseudo_gt_names(zoom_in=True),
                   help="Mipmap-GS zoom-in pseudo-GT (bicubic SR, oracle = true GT)")
    p.add_argument("--finetune-iterations", type=positive_int, default=1000, help="Mipmap-GS steps per level")
    p.add_argument("--finetune-no-densify", action="store_true",
                   help="Mipmap-GS levels only optimise the base's Gaussians (the release densifies every 100 steps)")
    p.add_argument("--settings", type=comma_list(_settings), default="zoom_out,zoom_in",
                   help="comma-separated stmt settings: zoom_out (train at full resolution, test at 1 ... 1/8), "
                        "zoom_in (train at 1/8, test at 1x ... 8x of it)")
    p.add_argument("--json", default="", metavar="FILE", help="also write the results to this JSON file")
    p.add_argument("--load", default="", metavar="FOLDER",
                   help="evaluate the models in this folder (<setting>/<method>/checkpoint.pt); never train")
    p.add_argument("--models", default="", metavar="FOLDER",
                   help="train/cache models in this folder (default: under the asset cache)")
    p.add_argument("--retrain", action="store_true", help="ignore cached models and train again")
    p.add_argument("--max-views", type=non_negative_int, default=0, help="test views per scale (0 = all)")


def run_eval(args: argparse.Namespace) -> int:
    from methods.gaussians.stmt import StmtBenchmark, format_report, write_json
    from methods.jobs import run_headless

    settings = {"out": ("zoom_out",), "in": ("zoom_in",), "both": ("zoom_out", "zoom_in")}.get(args.direction,
                                                                                              args.settings)
    bench = StmtBenchmark(root=_dataset_root(args), config=_config(args), methods=args.methods,
                          settings=settings, model_dir=Path(args.models) if args.models else None,
                          load_dir=Path(args.load) if args.load else None, retrain=args.retrain,
                          max_eval_views=args.max_views, log=lambda line: print(line, file=sys.stderr),
                          pseudo_gt_out=args.pseudo_gt_out, pseudo_gt_in=args.pseudo_gt_in,
                          finetune_iterations=args.finetune_iterations,
                          finetune_densify=not args.finetune_no_densify)
    result = run_headless(bench)
    print(format_report(result))
    if args.json:
        print(f"wrote {write_json(args.json, result)}")
    return 0


# ----- render gaussians -----------------------------------------------------------------------------------------
def add_render_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ply", required=True, help="3DGS / Mip-Splatting point_cloud.ply to render")
    p.add_argument("--cameras", required=True, metavar="JSON",
                   help="nerf_synthetic (transforms_*.json) or nerfstudio transforms file with the cameras")
    p.add_argument("--out", required=True, metavar="FOLDER", help="output folder (view_XXXX.png + view_XXXX.npy)")
    p.add_argument("--filter", default="auto", choices=FILTERS,
                   help="2D screen filter; auto = mip when the PLY has filter_3D (Mip-Splatting), else 3dgs")
    p.add_argument("--zoom", type=positive_float, default=1.0,
                   help="sampling rate: images are zoom x the camera's size with the same field of view")
    p.add_argument("--size", type=optional_size_arg, default="", metavar="WxH",
                   help="base image size before --zoom, same horizontal field of view (default: the cameras')")
    p.add_argument("--background", default="white", choices=tuple(BACKGROUNDS), help="background colour")
    p.add_argument("--backend", default="auto", choices=BACKEND_CHOICES,
                   help="rasterizer: auto = cuda if present, else gl (OpenGL 4.3, software GL too), else torch "
                        "(the reference); an unavailable one falls back with one line")


def run_render(args: argparse.Namespace) -> int:
    from methods.gaussians.render_cli import RenderSettings, render_ply

    settings = RenderSettings(filter=args.filter, zoom=args.zoom, size=args.size,
                              background=BACKGROUNDS[args.background], backend=args.backend)
    views = render_ply(args.ply, args.cameras, args.out, settings, log=print)
    total = sum(v.seconds for v in views)
    print(f"rendered {len(views)} views to {args.out} in {total:.2f} s "
          f"({total / max(1, len(views)) * 1000:.0f} ms per view)")
    return 0


# ----- export-demo-ply ------------------------------------------------------------------------------------------
def add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", metavar="OUT.ply", help="where to write the demo scene's PLY (replaced atomically)")
    p.add_argument("--cameras", default="", metavar="FILE.json",
                   help="also write the demo's 16 orbit cameras here (nerf_synthetic transforms format), for "
                        "`render gaussians --cameras`")
    p.add_argument("--gaussians", type=non_negative_int, default=0, metavar="N",
                   help="write a synthetic scene of N Gaussians instead (the demo's objects on a ground disc with a "
                        "backdrop, SH degree 3, shaped like a trained scene): e.g. 1000000 for the big-scene case")


def run_export(args: argparse.Namespace) -> int:
    from assets.cache import atomic_open

    out = Path(args.out).expanduser()
    if out.is_dir():
        raise ValueError(f"{out} is a folder; give a file name such as {out / 'demo.ply'}")
    from methods.gaussians.demo import big_scene, demo_cameras, demo_ply_path

    if args.gaussians:
        from methods.gaussians.ply import save_ply

        save_ply(big_scene(args.gaussians), out)
        print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB: a synthetic scene of {args.gaussians:,} "
              f"Gaussians as a standard 3DGS PLY)")
    else:
        with open(demo_ply_path(), "rb") as f, atomic_open(out, "wb", parents=True) as g:
            shutil.copyfileobj(f, g)
        print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB: the Splat view's demo scene as a standard 3DGS "
              f"PLY with Mip-Splatting's filter_3D)")
    if args.cameras:
        import json

        from assets.cache import atomic_write_text

        cams = demo_cameras()
        c = cams[0]  # nerfstudio keys: intrinsics and size in the file, so no images are needed to read it
        doc = {"fl_x": c.fx, "fl_y": c.fy, "cx": c.cx, "cy": c.cy, "w": c.width, "h": c.height,
               "frames": [{"file_path": f"view_{i:03d}", "transform_matrix": cam.c2w_opengl().tolist()}
                          for i, cam in enumerate(cams)]}
        atomic_write_text(args.cameras, json.dumps(doc, indent=1), parents=True)
        print(f"wrote {args.cameras} ({len(cams)} cameras, {cams[0].width}x{cams[0].height})")
    return 0


# ----- finetune gaussians (Mipmap-GS) -------------------------------------------------------------------------------
def parse_scales(text: str) -> tuple[float, ...]:
    """argparse ``type=`` for "1/8,1/4,1/2" or "2,4,8": target scales in 1/8..8 (not 1)."""
    from fractions import Fraction

    try:
        vals = tuple(float(Fraction(v.strip())) for v in text.split(",") if v.strip())
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected scales such as 1/8,1/4,1/2 or 2,4,8; got {text!r}") from None
    if not vals or any(not 1 / 8 - 1e-9 <= v <= 8 + 1e-9 or v == 1 for v in vals):
        raise argparse.ArgumentTypeError(f"scales must lie in 1/8..8 and not be 1; got {text!r}")
    return vals


def add_finetune_arguments(p: argparse.ArgumentParser) -> None:
    from methods.gaussians.mipmap import POSE_SETS, POSITION_LR, SOURCES, pseudo_gt_names

    p.add_argument("--ply", required=True, help="the trained base model (3DGS or Mip-Splatting PLY)")
    add_data_arguments(p, with_config=False)
    p.add_argument("--base-scale", type=positive_float, default=1.0,
                   help="dataset scale the base was trained at (1 for zoom-out stacks, 0.125 for zoom-in)")
    p.add_argument("--scales", type=parse_scales, default="1/8,1/4,1/2",
                   help="target scales relative to the base's training rate, 1/8..8")
    p.add_argument("--method", default="3dgs", choices=tuple(METHODS), help="how the levels render and train")
    p.add_argument("--pseudo-gt-out", default="bilinear", choices=pseudo_gt_names(zoom_in=False),
                   help="zoom-out targets: bilinear (as released), area (box filter), oracle (true images)")
    p.add_argument("--pseudo-gt-in", default="bicubic", choices=pseudo_gt_names(zoom_in=True),
                   help="zoom-in targets: bicubic super-resolution, oracle (true images)")
    p.add_argument("--poses", default="test", choices=POSE_SETS,
                   help="test (the paper's test-time adaptation), train, free (train + new poses around)")
    p.add_argument("--source", default="render", choices=SOURCES,
                   help="make pseudo-GT from the base's renders, or from the dataset's training images where the "
                        "poses have them (real; train or free poses)")
    p.add_argument("--position-lr", default="released", choices=POSITION_LR,
                   help="positions frozen except by densification (released) or the 3DGS decay schedule")
    p.add_argument("--iterations", type=positive_int, default=1000, help="finetuning steps per level")
    p.add_argument("--no-densify", action="store_true",
                   help="only optimise the base's Gaussians (the release densifies every 100 steps; on small "
                        "levels this measured +1 to +4 dB better, see the README)")
    p.add_argument("--opacity-reset", action="store_true",
                   help="reproduce the release's opacity reset at step 2 on white backgrounds (off by default)")
    p.add_argument("--out", required=True, metavar="DIR", help="stack folder: levels/*.ply + mipmap.json")
    p.add_argument("--resume", action="store_true",
                   help="continue a cancelled or killed job in --out (same settings): finished levels are kept, the "
                        "running one continues from its checkpoint")


def run_finetune(args: argparse.Namespace) -> int:
    from methods.gaussians.mipmap import FinetuneStackJob, MipmapVariant
    from methods.jobs import run_headless

    if not Path(args.ply).is_file():
        raise ValueError(f"--ply {args.ply}: no such file (a trained 3DGS / Mip-Splatting PLY)")
    variant = MipmapVariant(base=args.method, pseudo_out=args.pseudo_gt_out, pseudo_in=args.pseudo_gt_in,
                            poses=args.poses, source=args.source, position_lr=args.position_lr,
                            densify=not args.no_densify, opacity_reset=args.opacity_reset, iterations=args.iterations)
    job = FinetuneStackJob(args.ply, str(_dataset_root(args)), args.out, scales=args.scales, variant=variant,
                           base_scale=args.base_scale, white_background=not args.black_background,
                           resume=args.resume)
    result = run_headless(job)
    print(f"wrote {result['stack']} (levels {', '.join(f'{s:g}' for s in result['levels'])})")
    for lv in job.stack.levels if job.stack else ():
        print(f"  x{lv.scale:g}: {lv.ply}, {lv.metrics['n_gaussians']} Gaussians, {lv.metrics['seconds']:.0f} s")
    return 0


# ----- edit gaussians (the splat editor, headless) ------------------------------------------------------------------
def add_edit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ply", metavar="IN", help="a 3DGS / Mip-Splatting PLY, or a Mipmap-GS stack's mipmap.json "
                                             "(every level is edited through its correspondence to the base)")
    p.add_argument("--ops", required=True, metavar="OPS.json",
                   help="the edit list to replay: a JSON list of operations, or {\"ops\": [...]} (the history "
                        "panel exports one)")
    p.add_argument("--out", required=True, metavar="OUT",
                   help="the edited PLY, or for a stack a new mipmap.json (its PLYs are written beside it); atomic")
    p.add_argument("--force", action="store_true", help="allow OUT to replace IN (or, for a stack, IN's folder)")


def run_edit(args: argparse.Namespace) -> int:
    import json

    from methods.gaussians.edit import EditError, EditSession
    from methods.gaussians.ply import load_ply, save_ply
    from methods.gaussians.stack_edit import StackSession, replaces_original, save_stack

    src, out = Path(args.ply).expanduser(), Path(args.out).expanduser()
    is_stack = src.suffix.lower() == ".json"
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name such as "
                         f"{out / ('mipmap.json' if is_stack else 'edited.ply')}")
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: the folder {out.parent} does not exist")
    if is_stack != (out.suffix.lower() == ".json"):
        raise ValueError(f"--out {out}: a {'stack' if is_stack else 'PLY'} is written as "
                         f"{'a mipmap.json' if is_stack else '.ply'}")
    if src.exists() and replaces_original(out, src) and not args.force:
        raise ValueError(f"--out {out} would replace {src}{'’s files' if is_stack else ''}; write elsewhere or add "
                         f"--force")
    try:
        doc = json.loads(Path(args.ops).expanduser().read_text())
    except FileNotFoundError:
        raise ValueError(f"--ops {args.ops}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"--ops {args.ops}: not a JSON ops file ({' '.join(str(e).split())[:120]})") from None
    entries = doc.get("ops") if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        raise ValueError(f"--ops {args.ops}: expected a list of operations or {{\"ops\": [...]}}")
    if is_stack:
        from methods.gaussians.mipmap import MipStack

        stack = MipStack.read(src)
        try:
            model = load_ply(src.parent / stack.base)
            levels = [(lv.scale, load_ply(src.parent / lv.ply)) for lv in stack.levels]
            session: EditSession = StackSession(model, levels)
        except (EditError, ValueError, OSError) as e:
            raise ValueError(f"{src}: {e}") from None
    else:
        model = load_ply(src)
        session = EditSession(model)
    try:
        n = session.replay(entries)
    except EditError as e:
        raise ValueError(f"--ops {args.ops}: {e}; nothing written") from None
    alive = session.counts[0]
    if is_stack:
        save_stack(session, stack, out)  # type: ignore[arg-type]
        levels = ", ".join(f"x{s:g} {lv.n:,} -> {lv.counts[0]:,}" for s, lv, _ in session.levels)  # type: ignore
        print(f"{src.name}: {n} operations, base {model.num_gaussians:,} -> {alive:,} Gaussians ({levels}); "
              f"wrote {out}")
        return 0
    save_ply(session.edited(), out)
    print(f"{src.name}: {n} operations, {model.num_gaussians:,} -> {alive:,} Gaussians; wrote {out}")
    return 0
