"""MINER: pyramid, batched block MLPs, pruning, training vs an equal-size MLP, queries, checkpoints, CLI."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from assets.photos import load_photo
from methods.miner import blocks as B
from methods.miner.config import MinerConfig, preset
from methods.miner.pyramid import (collapse, from_blocks, gaussian_pyramid, laplacian_pyramid, pad_to_multiple,
                                   to_blocks, up2)
from methods.miner.train import MinerTrainer, load_miner


def _quiet(*_a, **_k) -> None:
    pass


def _never() -> bool:
    return False


def test_the_laplacian_pyramid_reconstructs_exactly_and_level_sizes_halve():
    img = torch.rand(96, 160, 3, dtype=torch.float64)
    res = laplacian_pyramid(img, 4)
    assert [tuple(r.shape[:2]) for r in res] == [(96, 160), (48, 80), (24, 40), (12, 20)]
    assert float((collapse(res) - img).abs().max()) < 1e-6
    g = gaussian_pyramid(img, 4)
    assert float((collapse(res, 2) - g[2]).abs().max()) < 1e-6
    # area downsampling is the 2x2 mean; UP2 of a constant is that constant
    assert float((g[1][3, 5] - img[6:8, 10:12].mean((0, 1))).abs().max()) < 1e-12
    assert float((up2(torch.full((4, 4, 1), 0.3)) - 0.3).abs().max()) < 1e-7
    blocks = to_blocks(img, 16)
    assert blocks.shape == (6 * 10, 256, 3) and torch.equal(blocks[11], img[16:32, 16:32].reshape(256, 3))
    assert torch.equal(from_blocks(blocks, 96, 160), img)
    padded, size = pad_to_multiple(torch.rand(50, 70, 3), 32)
    assert padded.shape[:2] == (64, 96) and size == (50, 70) and torch.equal(padded[63, 95], padded[49, 69])


def _loop_forward(cfg: MinerConfig, level: int, p: B.Params, x: torch.Tensor, scale) -> torch.Tensor:
    """Reference: one small MLP per block, written out with plain matmuls (no batching)."""
    outs = []
    for q in range(p["w0"].shape[0]):
        h = B.encode(x[0], cfg.pe_freqs)
        last = sum(1 for k in p if k.startswith("w")) - 1
        for i in range(last):
            z = h @ p[f"w{i}"][q] + p[f"b{i}"][q]
            h = torch.sin(cfg.omega0 * z) if cfg.activation == "sine" else torch.exp(-0.5 * (z / p[f"a{i}"][q]) ** 2)
        out = h @ p[f"w{last}"][q] + p[f"b{last}"][q]
        if cfg.output == "lightning":
            out = torch.sigmoid(out) if level == cfg.levels - 1 else torch.sin(p["a_out"][q] * out) * scale[q]
        outs.append(out)
    return torch.stack(outs)


@pytest.mark.parametrize("name,level", [("paper", 1), ("paper", 3), ("lightning", 1), ("lightning", 3)])
def test_the_batched_block_mlp_equals_a_loop_over_per_block_mlps(name, level):
    cfg = preset(name)
    g = torch.Generator().manual_seed(1)
    # float64: with omega0 = 150 the sine arguments are ~1e2, so float32 reordering alone moves gradients by ~1e-4
    p = {k: v.double() for k, v in B.init_params(cfg, level, 5, 3, g).items()}
    x = torch.rand(1, 37, 2, dtype=torch.float64) * 2 - 1
    scale = torch.rand(5, 1, 1, dtype=torch.float64) + 0.5
    leaves = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    ref_leaves = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    out = B.forward(cfg, level, leaves, x, scale)
    ref = _loop_forward(cfg, level, ref_leaves, x, scale)
    assert out.shape == (5, 37, 3)
    assert torch.allclose(out, ref, atol=1e-10, rtol=1e-9)
    w = torch.randn_like(out)
    (out * w).sum().backward()
    (ref * w).sum().backward()
    for k in p:
        assert torch.allclose(leaves[k].grad, ref_leaves[k].grad, atol=1e-9, rtol=1e-8), k


@pytest.mark.parametrize("kind", ["adam", "radam"])
def test_row_adam_matches_torch_and_dropping_rows_drops_their_state(kind):
    torch.manual_seed(0)
    w = torch.randn(6, 4, 3)
    ref = w.clone().requires_grad_(True)
    opt_ref = (torch.optim.Adam if kind == "adam" else torch.optim.RAdam)([ref], lr=1e-2)
    mine = B.RowAdam({"w": w.clone()}, 1e-2, kind)
    for _ in range(8):
        g = torch.randn(6, 4, 3)
        ref.grad = g.clone()
        opt_ref.step()
        mine.tick()
        mine.step({"w": g[:3]}, slice(0, 3))   # two chunks, as the trainer steps them
        mine.step({"w": g[3:]}, slice(3, 6))
    assert torch.allclose(mine.params["w"], ref.detach(), atol=1e-6)
    keep = torch.tensor([True, False, True, True, False, True])
    before_m = mine.m["w"][keep].clone()
    mine.keep(keep)
    assert mine.params["w"].shape[0] == 4 and torch.equal(mine.m["w"], before_m)
    assert mine.params["w"].requires_grad


def test_blocks_below_the_energy_threshold_never_train_and_converged_blocks_are_pruned_and_frozen():
    # left 48 columns flat grey: with the exact coarse level below, their residual is exactly 0 in the first two
    # block columns (UP2 reaches one coarse pixel); the right 48 columns carry fine detail
    rng = np.random.default_rng(0)
    img = np.full((64, 96, 3), 0.5, np.float32)
    img[:, 48:] = (0.5 + 0.1 * rng.standard_normal((64, 48, 3))).astype(np.float32)
    cfg = MinerConfig(name="t", levels=2, block=16, hidden=12, omega0=30.0, lr=3e-3, epochs=(0, 200),
                      stop_mse=2e-3, stop_relative=False, check_every=5, active_threshold=1e-6)
    tr = MinerTrainer(cfg, img, label="halves")
    tr.estimate[1] = gaussian_pyramid(torch.from_numpy(img), 2)[1]    # as if the coarse level were exact
    snapshots = []

    def snapshot(_p) -> None:
        lv = tr.model.levels[0]
        snapshots.append(({k: v.clone() for k, v in lv.params.items()}, lv.pruned.clone()))

    assert tr.train_level(0, snapshot, _never)
    fine = tr.model.levels[0]
    grid_active = fine.active.reshape(4, 6)
    assert not bool(grid_active[:, :2].any()) and bool(grid_active[:, 3:].all())
    out = tr.model.block_outputs(0, torch.arange(24)).reshape(4, 6, 256, 3)
    assert float(out[:, :2].abs().max()) == 0.0                  # never trained: exactly zero residual
    assert int((fine.pruned[~fine.active] >= 0).sum()) == 0
    # some blocks converged below stop_mse and were pruned; from then on their parameters never changed
    pruned = torch.nonzero(fine.pruned > 0).flatten()
    assert len(pruned) >= 1
    final = fine.params
    for params, pruned_now in snapshots:
        for q in pruned.tolist():
            if pruned_now[q] > 0:
                assert all(torch.equal(params[k][q], final[k][q]) for k in final)
    # and a pruned block's error is within the threshold it was stopped at
    tgt = to_blocks(torch.from_numpy(img) - up2(tr.estimate[1]), 16)
    mse = (tr.model.block_outputs(0, pruned) - tgt[pruned]).pow(2).mean((1, 2))
    assert bool((mse <= cfg.stop_mse * 1.05).all())


def test_a_tiny_miner_reaches_30_db_sooner_than_the_equal_size_single_mlp():
    from methods.miner.baseline import BaselineConfig, BaselineTrainer, width_for

    torch.set_num_threads(2)
    img = load_photo("astronaut", 128)
    tr = MinerTrainer(preset("test_tiny"), img, label="astronaut")
    tr.save_checkpoint = lambda *a, **k: None  # noqa: E731
    r = tr._run(_quiet, _never)
    target = 30.0
    t_miner = next(s for s, p in zip(tr.history["seconds"], tr.history["psnr"]) if p >= target)
    assert r["psnr"] > 38.0
    params = tr.model.parameter_count()
    cfg = BaselineConfig(width=width_for(params, BaselineConfig()), batch=8192, lr=1e-4)
    base = BaselineTrainer(cfg, img, budget_s=max(10.0, 6 * t_miner), report_every_s=0.25)
    base.run(_quiet, _never)
    assert abs(sum(p.numel() for p in base.net.parameters()) - params) / params < 0.02
    t_base = next((s for s, p in zip(base.history["seconds"], base.history["psnr"]) if p >= target), math.inf)
    print(f"\nMINER test_tiny: {target} dB after {t_miner:.2f} s; equal-size SIREN ({params} params): "
          f"{t_base:.2f} s; ratio {t_base / t_miner:.1f}x")
    assert t_miner < t_base


def test_regions_and_queries_equal_the_whole_reconstruction(tmp_path):
    img = load_photo("coffee")[:200, :300]  # padded to 256 x 320 internally
    tr = MinerTrainer(preset("test_tiny", epochs=(40,), out_dir=str(tmp_path)), img, label="coffee")
    tr._run(_quiet, _never)
    m = tr.model
    whole = m.reconstruct(0)
    assert whole.shape == (200, 300, 3)
    assert torch.allclose(m.reconstruct(0, (37, 141, 5, 299)), whole[37:141, 5:299], atol=1e-6)
    lvl1 = m.reconstruct(1)
    assert lvl1.shape == (100, 150, 3)
    assert torch.allclose(m.reconstruct(1, (10, 60, 70, 150)), lvl1[10:60, 70:150], atol=1e-6)
    # queries at level-j pixel centres are the reconstruction, in both modes
    for j in (0, 2):
        rec = m.reconstruct(j)
        h, w = rec.shape[:2]
        ys = -1 + (2 * torch.arange(h) + 1.0) / h * (h * 2 ** j / 200)
        xs = -1 + (2 * torch.arange(w) + 1.0) / w * (w * 2 ** j / 300)
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], -1)
        inside = (pts.abs() < 1).all(1)
        for mode in ("bilinear", "mlp"):
            q = m.query(pts[inside], j, mode)
            assert torch.allclose(q, rec.reshape(-1, 3)[inside], atol=1e-5), (j, mode)
    # checkpoint round trip: the same pixels
    loaded, _ = load_miner(tmp_path / "miner.pt")
    assert torch.equal(loaded.reconstruct(0), whole)


def test_cancel_then_resume_finishes_and_bad_checkpoints_are_one_line(tmp_path):
    img = load_photo("astronaut", 128)
    cfg = preset("test_tiny", out_dir=str(tmp_path))
    tr = MinerTrainer(cfg, img)
    calls = {"n": 0}

    def stop_in_level_1() -> bool:
        calls["n"] += 1
        return 1 in tr.model.levels and not tr.model.levels[1].done and calls["n"] > 200

    r = tr.run(_quiet, stop_in_level_1)
    assert r["cancelled"] and r["levels_done"] == 1
    resumed = MinerTrainer(cfg, img, resume=tmp_path / "miner.pt")
    assert sorted(resumed.model.levels) == [2]
    r2 = resumed.run(_quiet, _never)
    assert not r2["cancelled"] and r2["levels_done"] == 3 and r2["psnr"] > 38.0
    from methods.io import CheckpointError
    with pytest.raises(CheckpointError, match="resume with the same image"):
        MinerTrainer(cfg, load_photo("astronaut", 192), resume=tmp_path / "miner.pt")
    other = tmp_path / "other.pt"
    torch.save({"kind": "gaussiansr", "version": 1}, other)
    with pytest.raises(CheckpointError):
        load_miner(other)
    with pytest.raises(ValueError, match="too small for 5 levels"):
        MinerTrainer(preset("paper", levels=5), img)
    with pytest.raises(ValueError, match="NaN"):
        MinerTrainer(cfg, np.full((128, 128, 3), np.nan, np.float32))


def test_train_and_eval_commands(tmp_path, capsys):
    import json

    import main

    png = tmp_path / "rec.png"
    assert main.main(["train", "miner", "astronaut", "--preset", "test_tiny", "--max-side", "128",
                      "--out", str(tmp_path / "run"), "--save", str(png), "--threads", "2"]) == 0
    out = capsys.readouterr().out
    assert "3 of 3 levels" in out and png.is_file()
    js = tmp_path / "e.json"
    img = tmp_path / "small.png"
    from assets.cache import atomic_save_image
    atomic_save_image(img, load_photo("astronaut", 128))
    rc = main.main(["eval", "miner", str(img), "--budget", "3", "--json", str(js), "--threads", "2"])
    assert rc == 0
    rows = json.loads(js.read_text())
    assert set(rows) == {"miner-paper", "miner-lightning", "baseline"}
    for r in rows.values():
        assert set(r) == {"seconds_to", "psnr", "ssim", "params", "peak_mb"} and set(r["seconds_to"]) == {"30", "35",
                                                                                                           "40"}
    assert abs(rows["baseline"]["params"] - rows["miner-paper"]["params"]) / rows["miner-paper"]["params"] < 0.02
    capsys.readouterr()
    assert main.main(["train", "miner", str(tmp_path / "missing.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.png" in err[0] and "Traceback" not in err[0]


def test_the_miner_field_reads_pixel_centres_in_field_units_and_blur_picks_coarser_levels():
    from methods.field import grid_points
    from methods.miner.model import MinerField

    img = load_photo("astronaut", 128)
    tr = MinerTrainer(preset("test_tiny", epochs=(30,)), img)
    tr.save_checkpoint = lambda *a, **k: None  # noqa: E731
    tr._run(_quiet, _never)
    field = MinerField(tr.model)
    pts = grid_points((128, 128))                  # +-1 on the border pixel centres
    assert torch.allclose(field(pts).reshape(128, 128, 3), tr.model.reconstruct(0), atol=1e-5)
    assert field.level_for(0.0) == 0
    sigma_px = 0.4 * 4                              # ~ the blur of level 2
    var = (sigma_px * 2 / 127) ** 2
    assert field.level_for(var) == 2
    blurred = field(pts, var).reshape(128, 128, 3)
    assert torch.allclose(blurred, tr.model.query(torch.stack([(pts[:, 0] * 127 / 128), (pts[:, 1] * 127 / 128)], -1),
                                                  2).reshape(128, 128, 3), atol=1e-5)
    assert float(blurred.std()) < float(field(pts).std())


def test_the_scale_space_view_source_shows_a_miner_field():
    from methods.miner.model import MinerField
    from methods.ngssf.live_source import ScaleSpaceOptions, ScaleSpaceSource
    from render.live import RenderRequest

    img = load_photo("astronaut", 64)
    tr = MinerTrainer(preset("test_tiny", levels=2, epochs=(60,)), img)
    tr.save_checkpoint = lambda *a, **k: None  # noqa: E731
    tr._run(_quiet, _never)
    src = ScaleSpaceSource(MinerField(tr.model), img, value_range=(0.0, 1.0))
    sharp = src.render(RenderRequest(64, 64, zoom=1.0, options=ScaleSpaceOptions(variance=0.0, antialias=False,
                                                                                 ellipse=False))).image
    assert np.abs(sharp - tr.model.reconstruct(0).clamp(0, 1).numpy()).max() < 1e-4
    blurred = src.render(RenderRequest(64, 64, zoom=1.0, options=ScaleSpaceOptions(variance=4e-3, antialias=False,
                                                                                   ellipse=False))).image
    assert np.abs(np.diff(blurred, axis=1)).mean() < 0.8 * np.abs(np.diff(sharp, axis=1)).mean()


def test_speedup_lines_give_a_ratio_when_both_reached_and_a_lower_bound_when_the_baseline_did_not():
    from methods.miner.evaluate import speedups

    rows = {"miner-paper": {"seconds_to": {"30": 10.0, "35": 50.0, "40": None}},
            "baseline": {"seconds_to": {"30": 80.0, "35": None, "40": None}, "train_s": 600.0}}
    lines = speedups(rows)
    assert lines == ["miner-paper reaches 30 dB 8.0x sooner than the baseline",
                     "miner-paper reaches 35 dB at least 12.0x sooner than the baseline (which did not reach it in "
                     "600 s)"]
