"""The mip-NeRF 360 family's headless commands: `eval nerf360` trains (cached), scores every requested scale and
measures the proposal sampler against uniform sampling of the same model; bad inputs are one line."""
from __future__ import annotations

import json
import math

import pytest


def test_equal_psnr_ratio_interpolates_in_log_samples():
    from methods.nerf360.evaluate import equal_psnr_ratio

    prop = {"nerf_evals_per_ray": 16, "psnr": 25.0}
    rows = [{"nerf_evals_per_ray": 32, "psnr": 24.0}, {"nerf_evals_per_ray": 128, "psnr": 26.0}]
    assert equal_psnr_ratio(prop, rows) == pytest.approx(64 / 16)  # halfway in PSNR = geometric mean of 32 and 128
    assert math.isinf(equal_psnr_ratio({"nerf_evals_per_ray": 16, "psnr": 30.0}, rows))
    assert equal_psnr_ratio({"nerf_evals_per_ray": 16, "psnr": 20.0}, rows) == pytest.approx(2.0)


def test_eval_nerf360_scores_scales_and_the_sampler_saving(tmp_path, capsys):
    import main

    out = tmp_path / "n360.json"
    assert main.main(["eval", "nerf360", "--scene", "tiny", "--config", "test_tiny", "--max-views", "2",
                      "--scales", "1/2,1,2", "--uniform", "16,128", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res["psnr"]) == {"1/2", "1", "2"} and set(res["ssim"]) == {"1/2", "1", "2"}
    assert res["psnr"]["1"] > 20.0 and res["train_seconds"] > 0  # the tiny training's stated threshold
    prop, uni16, uni128 = res["sampler"]
    assert (prop["sampler"], uni16["sampler"]) == ("proposal", "uniform") and prop["nerf_evals_per_ray"] == 16
    print(f"proposal {prop['psnr']:.2f} dB vs uniform-16 {uni16['psnr']:.2f} / uniform-128 {uni128['psnr']:.2f}")
    assert prop["psnr"] > uni16["psnr"] + 0.5  # same NeRF-MLP budget: the proposal sampler puts it where it counts
    assert res["equal_psnr_ratio"] > 1.0
    text = capsys.readouterr().out
    assert "| proposal | 16 (+64 proposal-MLP) |" in text
    # the second run reuses the cached model: same numbers, no training
    out2 = tmp_path / "again.json"
    assert main.main(["eval", "nerf360", "--scene", "tiny", "--config", "test_tiny", "--max-views", "2",
                      "--scales", "1", "--uniform", "16", "--json", str(out2)]) == 0
    again = json.loads(out2.read_text())
    assert again["psnr"]["1"] == pytest.approx(res["psnr"]["1"]) and again["train_seconds"] == res["train_seconds"]


def test_nerf360_commands_refuse_bad_input_in_one_line(tmp_path, capsys):
    import main

    assert main.main(["eval", "nerf360", "--checkpoint", str(tmp_path / "none.pt")]) == 1
    err = capsys.readouterr().err
    assert "--checkpoint" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main.main(["train", "nerf360", "--dataset", str(tmp_path / "nowhere")]) == 1
    assert "folder not found" in capsys.readouterr().err
    assert main.main(["eval", "nerf360", "--scales", "0,1"]) == 2
    assert "scales must be positive" in capsys.readouterr().err
