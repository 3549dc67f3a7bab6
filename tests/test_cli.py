"""Headless subcommands of main.py: they do the real work, and bad input gives one line and a non-zero status."""
from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest

import main


def test_dataset_command_writes_a_loadable_nerf_synthetic_dataset(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main.main(["dataset", "--preset", "tiny", "--resolution", "16", "--train-views", "3",
                      "--out", str(out)]) == 0
    frames = json.loads((out / "transforms_train.json").read_text())["frames"]
    assert len(frames) == 3
    from methods.datasets import load_nerf_synthetic

    ds = load_nerf_synthetic(out, "test", scale=2)
    assert ds.images.shape[1:3] == (32, 32)
    assert "dataset written to" in capsys.readouterr().out


def test_dataset_command_refuses_a_non_empty_folder_in_one_line(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main.main(["dataset", "--preset", "tiny", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "overwrite" in err[-1] and "Traceback" not in "\n".join(err)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_unknown_preset_is_an_argparse_error_listing_the_presets(capsys):
    assert main.main(["dataset", "--preset", "huge"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "argument --preset: invalid choice: 'huge'" in err
    from assets.synthetic_scene import PRESETS

    assert all(f"'{name}'" in err for name in PRESETS)


def _coverage(path, bg=(0.08, 0.09, 0.11)) -> int:
    img = iio.imread(path).astype(np.float32) / 255
    return int((np.abs(img - np.array(bg)).max(axis=2) > 0.04).sum())


def test_render_mesh_coverage_scales_with_zoom_squared(tmp_path):
    paths = {}
    for zoom in (0.25, 0.5):
        paths[zoom] = tmp_path / f"fish_{zoom}.png"
        assert main.main(["render", "mesh", "--zoom", str(zoom), "--filter", "supersampled", "--size", "256x256",
                          "--out", str(paths[zoom])]) == 0
    ratio = _coverage(paths[0.5]) / _coverage(paths[0.25])
    assert ratio == pytest.approx(4.0, rel=0.15)  # zoom is a sampling rate: 2x zoom -> 4x the pixels


def test_render_mesh_nearest_aliases_where_the_reference_does_not(tmp_path):
    near, ref = tmp_path / "n.png", tmp_path / "r.png"
    for f, p in (("nearest", near), ("supersampled", ref)):
        assert main.main(["render", "mesh", "--zoom", "0.25", "--filter", f, "--size", "256x256",
                          "--out", str(p)]) == 0
    a, b = (iio.imread(p).astype(np.float32) / 255 for p in (near, ref))
    # same fish, same place; nearest adds high-frequency error against the 16-sample reference
    diff = np.abs(a - b).mean(axis=2)
    assert _coverage(near) == pytest.approx(_coverage(ref), rel=0.1)
    assert diff.max() > 0.2


def test_train_demo_reaches_a_psnr(capsys):
    assert main.main(["train", "demo", "--steps", "150"]) == 0
    out = capsys.readouterr().out
    psnr = float(out.split("'psnr':")[1].split(",")[0].strip(" }"))
    assert psnr > 20.0


def test_info_reports_device_and_gl(capsys):
    assert main.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "device" in out and "CPU" in out and "opengl" in out
