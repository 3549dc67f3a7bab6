"""Gaussian training (3DGS / Mip-Splatting) and the stmt benchmark: real tiny runs on a generated scene."""
from __future__ import annotations

import json
import math
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import main
from methods.datasets import load_nerf_synthetic
from methods.gaussians.densify import position_lr
from methods.gaussians.ply import load_ply
from methods.gaussians.stmt import SETTINGS, StmtBenchmark, format_report
from methods.gaussians.train import (
    TRAIN_PRESETS,
    GaussianTrainer,
    TrainConfig,
    evaluate_model,
    load_trained_model,
    scene_extent,
)
from methods.jobs import Job, Progress
from methods.metrics import psnr

# Measured with test_tiny on the 24-view tiny scene: 25.2 dB held-out for mip, while the mean training image scores
# 18.3 dB and a blank white image 9.5 dB. The bars sit ~3 dB below the measurement (seeded, but thread timing
# may reorder float sums), yet a broken loss, densifier or rasterizer gradient fails them.
HELD_OUT_PSNR_MIN = 22.0
BASELINE_MARGIN_DB = 4.0


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    """The tiny preset with 24 training views (with its 8, held-out PSNR ends only ~2 dB above a mean image)."""
    from assets.synthetic_scene import SceneSpec
    from methods.datasets import GenerateSyntheticDataset

    out = tmp_path_factory.mktemp("gs") / "tiny24"
    GenerateSyntheticDataset(out, SceneSpec.preset("tiny").with_(n_train=24)).run(lambda p: None, lambda: False)
    return out


@pytest.fixture(scope="module")
def trained(scene, tmp_path_factory):
    """One full test_tiny Mip-Splatting run, shared by the assertions about its outcome."""
    cfg = TrainConfig.preset("test_tiny", method="mip", out_dir=str(tmp_path_factory.mktemp("run")))
    trainer = GaussianTrainer.from_path(scene, cfg)
    records: list[Progress] = []
    summary = trainer.run(records.append, lambda: False)
    return trainer, summary, records


def test_presets_follow_the_reference_schedule():
    paper = TrainConfig.preset("paper")
    assert paper.iterations == 30_000 and paper.lr.position_max_steps == 30_000
    d = paper.densify
    assert (d.from_iter, d.until_iter, d.interval, d.opacity_reset_interval) == (500, 15_000, 100, 3000)
    assert paper.sh_interval == 1000 and paper.filter3d_interval == 100 and paper.n_init_points == 100_000
    small = TrainConfig.preset("cpu_small")
    assert small.lr.position_max_steps == small.iterations
    assert small.densify.from_iter < small.densify.until_iter < small.iterations
    # every preset's position-LR horizon is its run length, so the schedule ends at the final rate
    assert all(c.lr.position_max_steps == c.iterations for c in TRAIN_PRESETS.values())
    assert TrainConfig.preset("cpu_small", iterations=77).lr.position_max_steps == 77
    short = paper.scaled_to(3000)  # the CLI's --iterations: the whole schedule shrinks 10x
    assert (short.densify.from_iter, short.densify.until_iter, short.densify.interval) == (50, 1500, 10)
    assert (short.densify.opacity_reset_interval, short.sh_interval, short.lr.position_max_steps) == (300, 100, 3000)


@pytest.mark.parametrize("bad, message", [
    (dict(name="huge"), "unknown training config 'huge'"),
    (dict(name="paper", method="nerf"), "unknown Gaussian method 'nerf'"),
    (dict(name="paper", init="sfm"), "unknown init 'sfm'"),
])
def test_bad_configs_are_one_line_errors(bad, message):
    with pytest.raises(ValueError, match=message) as e:
        TrainConfig.preset(bad.pop("name"), **bad)
    assert "\n" not in str(e.value)


def test_points_init_reads_a_point_cloud_ply(scene, tmp_path):
    from plyfile import PlyData, PlyElement

    rng = np.random.default_rng(0)
    pts = np.zeros(200, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    for k in ("x", "y", "z"):
        pts[k] = rng.uniform(-1, 1, 200)
    pts["red"] = 255
    path = tmp_path / "points3d.ply"
    PlyData([PlyElement.describe(pts, "vertex")]).write(str(path))
    cfg = TrainConfig.preset("test_tiny", init="points", points_path=str(path), out_dir=str(tmp_path / "o"))
    trainer = GaussianTrainer.from_path(scene, cfg)
    assert trainer.model.num_gaussians == 200
    assert torch.allclose(trainer.model.sh_dc[:, 0, 0], torch.full((200,), 0.5 / 0.28209479177387814))  # red = 1
    with pytest.raises(ValueError, match="point cloud not found"):
        GaussianTrainer.from_path(scene, cfg.with_(points_path=str(tmp_path / "none.ply")))


def test_scene_extent_is_1_1_times_the_camera_spread(scene):
    cams = load_nerf_synthetic(scene, "train").cameras
    centres = np.stack([c.position for c in cams])
    expected = 1.1 * np.linalg.norm(centres - centres.mean(0), axis=1).max()
    assert scene_extent(cams) == pytest.approx(expected)


def test_training_beats_the_stated_psnr_and_a_mean_image_baseline(trained, scene):
    trainer, summary, _ = trained
    assert isinstance(trainer, Job)
    assert summary["iterations"] == trainer.config.iterations and not summary["cancelled"]
    assert summary["psnr"] > HELD_OUT_PSNR_MIN, summary
    held = load_nerf_synthetic(scene, "test")
    mean_image = load_nerf_synthetic(scene, "train").images.mean(axis=0)
    baseline = float(np.mean([psnr(mean_image, im) for im in held.images]))
    assert summary["psnr"] > baseline + BASELINE_MARGIN_DB, (summary["psnr"], baseline)
    # the summary's number is reproducible from the saved model
    model, cfg, it = load_trained_model(summary["checkpoint"])
    again = evaluate_model(model, cfg.spec, held)
    assert again["psnr"] == pytest.approx(summary["psnr"], abs=1e-3)
    assert it == cfg.iterations and model.filter_3d is not None


def test_progress_reports_every_step_with_metrics_and_previews(trained):
    trainer, _, records = trained
    steps = [r.step for r in records if not r.message.startswith("evaluating")]
    assert steps == list(range(1, trainer.config.iterations + 1))
    assert all({"loss", "psnr", "n_gaussians"} <= set(r.metrics) for r in records)
    previews = [r.preview for r in records if r.preview is not None]
    assert previews and previews[0].shape == (32, 32, 3)
    assert all(np.isfinite(p).all() and p.min() >= 0 and p.max() <= 1 for p in previews)
    assert isinstance(trainer.lock, type(threading.Lock()))


def test_densification_changes_the_gaussian_count(trained):
    trainer, _, records = trained
    counts = [r.metrics["n_gaussians"] for r in records if not r.message.startswith("evaluating")]
    d = trainer.config.densify
    assert counts[0] == trainer.config.n_init_points
    refine_steps = [it for it in range(1, len(counts) + 1) if d.should_densify(it)]
    assert refine_steps, "the test schedule never refines"
    changed = [it for it in refine_steps if counts[it - 1] != counts[it - 2]]
    assert changed, f"densify/prune never changed N at steps {refine_steps}: {sorted(set(counts))}"
    # N only changes at refinement steps (cloning, splitting and pruning happen nowhere else)
    assert all(counts[i] == counts[i - 1] or d.should_densify(i + 1) for i in range(1, len(counts)))
    assert any("densify:" in r.message for r in records)


def test_position_lr_schedule_reaches_its_final_value(trained):
    trainer, _, _ = trained
    lr = {g["name"]: g["lr"] for g in trainer.optimizer.param_groups}
    c = trainer.config.lr
    assert lr["means"] == pytest.approx(c.position_final * trainer.extent, rel=1e-9)
    assert position_lr(1, trainer.extent, c.position_init, c.position_final, c.position_max_steps) == \
        pytest.approx(c.position_init * trainer.extent, rel=0.05)
    assert lr["sh_dc"] == c.sh_dc and lr["logit_opacities"] == c.opacity


def test_outputs_are_standard_plys_and_mip_also_writes_a_baked_one(trained):
    trainer, summary, _ = trained
    plain, baked = load_ply(summary["ply"]), load_ply(summary["ply_baked"])
    assert plain.num_gaussians == baked.num_gaussians == summary["n_gaussians"]
    assert plain.filter_3d is not None and baked.filter_3d is None
    s_eff, o_eff = trainer.model.effective(True)
    assert torch.allclose(baked.scales, s_eff, rtol=1e-5) and torch.allclose(baked.opacities, o_eff, atol=1e-6)


def test_cancel_returns_within_a_second_with_a_loadable_checkpoint(scene, tmp_path):
    cfg = TrainConfig.preset("test_tiny", method="3dgs", out_dir=str(tmp_path))
    trainer = GaussianTrainer.from_path(scene, cfg)
    stop = threading.Event()
    stopped_at: dict[str, float] = {}

    def on_progress(p: Progress) -> None:
        if p.step == 3 and not stop.is_set():
            stopped_at["t"] = time.perf_counter()
            stop.set()

    summary = trainer.run(on_progress, stop.is_set)
    elapsed = time.perf_counter() - stopped_at["t"]
    assert summary["cancelled"] and summary["iterations"] == 3
    assert elapsed < 1.0, f"cancel took {elapsed:.2f} s"
    model, got, it = load_trained_model(Path(tmp_path) / "checkpoint.pt")
    assert it == 3 and got.method == "3dgs" and model.num_gaussians == trainer.model.num_gaussians
    # and training resumes from it, optimizer state included
    resumed = GaussianTrainer.from_path(scene, cfg.with_(iterations=5), resume=Path(tmp_path) / "checkpoint.pt")
    assert resumed.iteration == 3
    out = resumed.run(lambda p: None, lambda: False)
    assert out["iterations"] == 5 and math.isfinite(out["psnr"])


def test_live_model_can_be_rendered_from_another_thread_under_the_lock(scene, tmp_path):
    cfg = TrainConfig.preset("test_tiny", out_dir=str(tmp_path)).scaled_to(110)  # refines at 36, 54, 72, 90
    trainer = GaussianTrainer.from_path(scene, cfg)
    cam = load_nerf_synthetic(scene, "val").cameras[0]
    done = threading.Event()
    errors: list[BaseException] = []
    renders = 0

    def viewer() -> None:
        nonlocal renders
        while not done.is_set():
            try:
                with trainer.lock, torch.no_grad():
                    img = trainer.model.render(cam, filter="mip").color
                assert img.shape == (32, 32, 3)
                renders += 1
                time.sleep(0.005)  # a viewer renders per frame; re-taking a Lock in a tight loop starves the trainer
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)
                return

    t = threading.Thread(target=viewer)
    t.start()
    try:
        trainer.run(lambda p: None, lambda: False)
    finally:
        done.set()
        t.join()
    assert not errors and renders > 0
    assert len(set(trainer.history["n_gaussians"])) > 1  # the viewer rendered across densification swaps


@pytest.fixture(scope="module")
def stmt_run(scene, tmp_path_factory):
    cfg = TrainConfig.preset("test_tiny", iterations=30, n_init_points=300)
    models = tmp_path_factory.mktemp("stmt")
    bench = StmtBenchmark(scene, cfg, model_dir=models, min_train_side=4)
    t0 = time.perf_counter()
    result = bench.run(lambda p: None, lambda: False)
    return bench, result, models, time.perf_counter() - t0


def test_stmt_returns_tables_with_the_right_rows_and_columns(stmt_run):
    _, result, _, _ = stmt_run
    assert list(result["settings"]) == ["zoom_out", "zoom_in"]
    for key, s in result["settings"].items():
        assert s["columns"] == list(SETTINGS[key].columns)
        assert s["scales"] == list(SETTINGS[key].eval_scales)
        for metric in ("psnr", "ssim"):
            assert list(s[metric]) == ["3dgs", "mip"]
            for values in s[metric].values():
                assert len(values) == 4 and all(math.isfinite(v) for v in values)
            assert all(s[f"{metric}_avg"][m] == pytest.approx(np.mean(s[metric][m])) for m in ("3dgs", "mip"))
        assert all(src == "files" for src in s["gt_source"].values())  # our scene has true multi-scale GT
    assert result["settings"]["zoom_in"]["train_size"] == [4, 4]
    report = format_report(result)
    for text in ("| 3DGS", "| Mip-Splatting", "Full", "1/8", "8x", "Avg", "PSNR", "SSIM"):
        assert text in report
    json.dumps(result)  # JSON-ready


def test_stmt_reuses_cached_models_and_evaluates_real_format_scenes(stmt_run, scene, tmp_path):
    bench, first, models, first_seconds = stmt_run
    assert all(m["trained_now"] for m in first["models"].values())
    again = StmtBenchmark(scene, bench.config, model_dir=models, min_train_side=4).run(lambda p: None, lambda: False)
    assert not any(m["trained_now"] for m in again["models"].values())
    assert again["settings"]["zoom_out"]["psnr"] == first["settings"]["zoom_out"]["psnr"]
    # a real nerf_synthetic scene has no multiscale.json: lower scales are area-downsampled and the report says so;
    # with 32 px images, training at 1/8 is below the default minimum, so zoom-in is omitted with a note
    real = tmp_path / "real"
    shutil.copytree(scene, real, ignore=shutil.ignore_patterns("multiscale.json", "*_x*"))
    res = StmtBenchmark(real, bench.config, load_dir=models).run(lambda p: None, lambda: False)
    assert list(res["settings"]) == ["zoom_out"]
    assert res["settings"]["zoom_out"]["gt_source"]["0.125"] == "area-downsampled"
    notes = " ".join(res["notes"])
    assert "area-downsampled" in notes and "zoom_in omitted" in notes


def test_eval_command_prints_tables_and_writes_json(stmt_run, scene, tmp_path, capsys):
    _, _, models, _ = stmt_run
    out = tmp_path / "stmt.json"
    assert main.main(["eval", "gaussians", "--dataset", str(scene), "--config", "test_tiny", "--load", str(models),
                      "--settings", "zoom_out", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| Mip-Splatting" in text and "SSIM" in text
    data = json.loads(out.read_text())
    assert set(data["settings"]["zoom_out"]["psnr"]) == {"3dgs", "mip"}


def test_eval_command_with_missing_models_is_one_line(scene, tmp_path, capsys):
    assert main.main(["eval", "gaussians", "--dataset", str(scene), "--load", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "checkpoint not found" in err[-1] and err[-1].startswith("mipstudio: ")
    assert "Traceback" not in "\n".join(err)


def test_train_command_runs_gaussians_and_keeps_demo(scene, tmp_path, capsys):
    assert main.main(["train", "gaussians", "--dataset", str(scene), "--config", "test_tiny", "--iterations", "4",
                      "--variant", "3dgs", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "3dgs: trained 4 iterations" in out and (tmp_path / "point_cloud.ply").is_file()
    assert main.main(["train", "demo", "--steps", "3"]) == 0
    assert "'steps': 3" in capsys.readouterr().out


def test_the_training_device_is_validated_with_a_clear_line(scene):
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        TrainConfig.preset("test_tiny", device="tpu")
    cfg = TrainConfig.preset("test_tiny", device="cpu", iterations=2)
    assert GaussianTrainer.from_path(scene, cfg).model.device == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no CUDA GPU; use --device cpu"):
            GaussianTrainer.from_path(scene, TrainConfig.preset("test_tiny", device="cuda"))
