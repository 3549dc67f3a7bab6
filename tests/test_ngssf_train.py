"""NGSSF training, checkpoints/resume, evaluation and the CLI on tiny problems."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from methods.io import CheckpointError
from methods.field import eval_grid
from methods.ngssf.modalities import load_picture, make_signal, picture_signal
from methods.ngssf.train import NGSSFTrainer, random_isotropic, train_preset

TINY = train_preset("test_tiny")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """test_tiny on a 64² crop of the astronaut, then calibrated (shared by several tests)."""
    torch.set_num_threads(2)
    signal = picture_signal("astronaut", size=64)
    out = tmp_path_factory.mktemp("ngssf_run")
    trainer = NGSSFTrainer(signal, TINY.replace(calibrate=True), out_dir=out)
    result = trainer.run(lambda p: None, lambda: False)
    return trainer, result


def _psnr(a: np.ndarray, b: np.ndarray, crop: int) -> float:
    a, b = a[crop:-crop or None, crop:-crop or None], b[crop:-crop or None, crop:-crop or None]
    return 10 * math.log10(4.0 / float(np.mean((np.clip(a, -1, 1) - b) ** 2)))


def test_tiny_training_matches_exact_blur_at_1e_3(trained):
    from methods.ngssf.ground_truth import gaussian_blur_exact
    from methods.field import border_crop

    trainer, result = trained
    assert result["iterations"] == TINY.iterations and not result["cancelled"]
    assert result["final_loss"] < trainer.losses[0] * 0.5  # it learned something
    img = trainer.signal.image * 2 - 1
    gt = gaussian_blur_exact(img, 1e-3)
    crop = border_crop(64, 1e-3)
    smoothed = eval_grid(trainer.field, (64, 64), 1e-3).numpy()
    sharp = eval_grid(trainer.field, (64, 64)).numpy()
    p_smooth, p_sharp = _psnr(smoothed, gt, crop), _psnr(sharp, gt, crop)
    assert p_smooth > 28.0, p_smooth  # measured 31.1 dB (sharp field vs the same target: 23.4 dB)
    assert p_smooth > p_sharp + 3.0, (p_smooth, p_sharp)  # the smoothing, not just the fit, earns the score


def test_calibration_factor_is_stored_in_the_checkpoint(trained):
    from methods.ngssf.train import load_field

    trainer, result = trained
    field, meta = load_field(result["checkpoint"])
    assert math.isfinite(result["calibration"]) and result["calibration"] > 0
    assert float(field.calibration) == pytest.approx(result["calibration"], rel=1e-6)
    assert meta["modality"] == "picture" and meta["step"] == TINY.iterations
    x = torch.rand(50, 2) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(field(x, 1e-3), trainer.field(x, 1e-3), atol=1e-6)


def test_resume_continues_exactly(tmp_path):
    cfg = TINY.replace(iterations=12, batch=256)
    sig = picture_signal("chelsea", size=32)
    a = NGSSFTrainer(sig, cfg, out_dir=tmp_path)
    for _ in range(6):
        a.step()
    path = a.save(tmp_path / "half.pt")
    tail_a = [a.step() for _ in range(6)]
    b = NGSSFTrainer(sig, cfg, resume=path)
    assert b.step_count == 6 and len(b.losses) == 6
    tail_b = [b.step() for _ in range(6)]
    np.testing.assert_allclose(tail_a, tail_b, rtol=1e-5)


def test_resume_refuses_another_modality(tmp_path):
    sig = picture_signal("chelsea", size=32)
    t = NGSSFTrainer(sig, TINY.replace(iterations=1, batch=64))
    t.step()
    path = t.save(tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="ackley"):
        NGSSFTrainer(make_signal("ackley", "ackley"), TINY, resume=path)


def test_cancel_stops_quickly_and_keeps_a_checkpoint(tmp_path):
    sig = picture_signal("chelsea", size=32)
    t = NGSSFTrainer(sig, TINY.replace(batch=128), out_dir=tmp_path)
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    r = t.run(lambda p: None, stop)
    assert r["cancelled"] and r["iterations"] == 3
    assert (tmp_path / "checkpoint.pt").is_file()


def test_isotropic_covariances_span_the_paper_range():
    c = random_isotropic(20000, 2, torch.Generator().manual_seed(0))
    v = c[:, 0, 0]
    assert torch.equal(c[:, 0, 1], torch.zeros(20000)) and torch.equal(c[:, 1, 1], v)
    lg = torch.log10(v)
    assert -12.0 <= float(lg.min()) < -11.9 and 1.9 < float(lg.max()) <= 2.0
    assert abs(float(lg.mean()) + 5.0) < 0.1  # log-uniform on [-12, 2]


def test_bad_pictures_give_one_clear_line(tmp_path):
    with pytest.raises(ValueError, match="neither a file nor a bundled photo"):
        load_picture(str(tmp_path / "missing.png"))
    for name, content in (("bad.png", b"not a png at all"), ("noise.png", np.random.default_rng(0).bytes(2048)),
                          ("notes.txt", b"hello\n")):
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(ValueError) as ei:
            load_picture(str(bad))
        # not imageio's "pip install imageio[pyav]" advice with a doubled backtick: the file and what to do
        assert str(ei.value) == (f"cannot read image {bad}: not a PNG/JPEG/BMP/TIFF/GIF/WebP image imageio can "
                                 f"decode; check the file or pass another image")
    with pytest.raises(ValueError, match="unknown NGSSF preset"):
        train_preset("huge")


def test_cli_eval_prints_a_table_for_a_checkpoint(trained, capsys):
    import main

    _, result = trained
    rc = main.main(["eval", "ngssf", "astronaut", "--field", result["checkpoint"], "--covariances", "3"])
    out = capsys.readouterr().out
    assert rc == 0
    for label in ("σ² = 0 ", "σ² = 0.0001", "σ² = 0.001", "σ² = 0.01", "σ² = 0.1", "random covariances"):
        assert label in out, out
    row = next(line for line in out.splitlines() if "σ² = 0.001" in line)
    psnr = float(row.split("|")[2])
    assert psnr > 28.0, row


def test_cli_train_without_target_is_one_line(capsys):
    import main

    assert main.main(["train", "ngssf"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bundled photo name" in err[0]
