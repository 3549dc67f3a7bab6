"""The MINER view's source beyond bundled photos: a ``train miner`` checkpoint (with its original loaded again from
what the checkpoint recorded) and a running training job shown level by level."""
from __future__ import annotations

import math
import re
import shutil
import threading
import time

import numpy as np
import pytest
import torch

from assets.photos import load_photo
from methods.miner.config import preset
from methods.miner.live_source import MinerOptions, MinerSource
from methods.miner.train import MinerTrainer, load_miner, psnr_of
from render.live import RenderRequest


def _wait(cond, timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def _render(src: MinerSource, key: str, zoom: float = 1.0, **options) -> dict:
    opts = MinerOptions(opened=key, **options)
    return src.render(RenderRequest(96, 96, zoom=zoom, options=opts)).aux


def test_a_checkpoint_opens_with_its_original_at_every_level(tmp_path, capsys):
    import main
    from assets.cache import atomic_save_image
    from methods.io import CheckpointError

    png = tmp_path / "photo.png"
    atomic_save_image(png, load_photo("astronaut", 128))
    assert main.main(["train", "miner", str(png), "--preset", "test_tiny", "--out", str(tmp_path / "run"),
                      "--threads", "2"]) == 0
    printed = float(re.search(r"PSNR ([\d.]+) dB", capsys.readouterr().out).group(1))
    ckpt = tmp_path / "run" / "miner.pt"
    src = MinerSource()
    try:
        key = src.open_checkpoint(str(ckpt))
        fit = src.fit(key, wait=True)
        assert sorted(fit.levels) == [0, 1, 2] and src.notes == [] and fit.image is not None
        model, _ = load_miner(ckpt)
        assert torch.equal(fit.levels[0], model.reconstruct(0).clamp(0, 1))
        aux = _render(src, key)
        assert aux["level_index"] == 0 and abs(aux["psnr"] - printed) < 0.01   # the CLI's own figure
        assert aux["size"] == (128, 128) and aux["blocks"] == 64
        assert _render(src, key, zoom=0.25)["level_index"] == 2
        # the original moved away: the model still shows, compare and the error map say why they cannot
        shutil.move(png, tmp_path / "elsewhere.png")
        key = src.open_checkpoint(str(ckpt))
        fit = src.fit(key, wait=True)
        assert fit.image is None and "photo.png not loaded" in fit.note and "\n" not in fit.note
        aux = _render(src, key, compare="original")
        assert sorted(fit.levels) == [0, 1, 2] and fit.note in aux["note"]
        assert "psnr" not in aux and fit.note in _render(src, key, overlay="error")["note"]
        bad = tmp_path / "bad.pt"
        bad.write_bytes(b"\x00not a checkpoint" * 10)
        with pytest.raises(CheckpointError) as e:
            src.open_checkpoint(str(bad))
        assert "bad.pt" in str(e.value) and "\n" not in str(e.value)
    finally:
        src.close()


def test_a_running_training_job_is_shown_level_by_level(tmp_path):
    img = load_photo("astronaut", 128)
    trainer = MinerTrainer(preset("test_tiny", out_dir=str(tmp_path)), img)
    src = MinerSource()
    try:
        key = src.follow_trainer(trainer)
        fit = src.fit(key)
        assert fit.levels == {} and "the original, dimmed" in _render(src, key)["note"]
        rev = src.live.revision
        assert trainer.train_level(2, lambda p: None, lambda: False)
        assert _wait(lambda: 2 in fit.levels) and 1 not in fit.levels and src.live.revision > rev
        aux = _render(src, key)
        assert aux["level_index"] == 2     # the finest level there is so far
        done = threading.Event()
        threading.Thread(target=lambda: (trainer.run(lambda p: None, lambda: False), done.set()),
                         daemon=True).start()
        assert done.wait(120) and _wait(lambda: fit.thread is not None and not fit.thread.is_alive())
        assert sorted(fit.levels) == [0, 1, 2] and fit.status == ""
        assert torch.equal(fit.levels[0], trainer.model.reconstruct(0).clamp(0, 1))
        aux = _render(src, key)
        assert aux["level_index"] == 0 and abs(aux["psnr"] - psnr_of(fit.levels[0], trainer.image)) < 1e-9
        # a job cancelled before its first level ends: the view says so instead of waiting for ever
        cancelled = MinerTrainer(preset("test_tiny", out_dir=str(tmp_path / "c")), img)
        key2 = src.follow_trainer(cancelled)
        assert cancelled.run(lambda p: None, lambda: True)["cancelled"]
        fit2 = src.fit(key2)
        assert _wait(lambda: not fit2.thread.is_alive()) and fit2.levels == {} and "no finished" in fit2.status
    finally:
        src.close()


def test_opened_image_files_are_fitted_centre_cropped_with_a_note(tmp_path):
    from assets.cache import atomic_save_image

    png = tmp_path / "wide.png"
    atomic_save_image(png, np.concatenate([load_photo("astronaut", 96)] * 2, 1))    # 192 x 96
    src = MinerSource(open_side=64)
    try:
        key = src.open_image(str(png))
        assert any("centre-cropped to 64x64" in n for n in src.notes)
        fit = src.fit(key, wait=True)
        assert fit.size == (64, 64) and fit.config.levels == 3 and sorted(fit.levels) == [0, 1, 2]
        aux = _render(src, key)
        assert aux["psnr"] > 25.0 and math.isfinite(aux["psnr"])
        with pytest.raises(ValueError, match="missing.png"):
            src.open_image(str(tmp_path / "missing.png"))
    finally:
        src.close()


def test_only_the_newest_opened_files_are_kept_and_an_older_one_says_it_was_closed(tmp_path):
    from assets.cache import atomic_save_image
    from methods.miner.live_source import KEEP_OPENED

    src = MinerSource(open_side=32)
    try:
        keys, fits = [], []
        for i in range(KEEP_OPENED + 2):
            png = tmp_path / f"img{i}.png"
            atomic_save_image(png, load_photo("astronaut", 32 + 8 * i)[:32, :32])
            keys.append(src.open_image(str(png)))
            fits.append(src.fit(keys[-1]))
        src.fit("astronaut")       # a bundled photo's fit is not an opened one: it does not push any out
        assert [k for k in src._fits if k != "astronaut"] == keys[-KEEP_OPENED:]
        assert all(f.closed.is_set() for f in fits[:-KEEP_OPENED])      # the dropped fits were told to stop
        assert not any(f.closed.is_set() for f in fits[-KEEP_OPENED:])
        with pytest.raises(ValueError, match="img0.png was closed"):
            src.fit(keys[0])
        assert _render(src, keys[-1])["size"] == (32, 32)
    finally:
        src.close()
