"""Checkpoints (atomic writes, one-line validation errors) and the shared image metrics (closed forms, and
agreement with scikit-image, which evaluation numbers come from)."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from methods import io as mio
from methods.io import CheckpointError, atomic_open, atomic_write, load_checkpoint, save_checkpoint
from methods.metrics import dssim, gaussian_window, mse, psnr, ssim


def _payload() -> dict:
    return {
        "model": {"net.0.weight": torch.arange(12.0).reshape(3, 4), "net.0.bias": torch.zeros(3)},
        "step": 7,
        "config": {"preset": "cpu_tiny", "lr": 1e-3},
        "xyz": torch.randn(5, 3),
    }


def _error(path, **kw) -> str:
    with pytest.raises(CheckpointError) as ei:
        load_checkpoint(path, **kw)
    msg = str(ei.value)
    assert isinstance(ei.value, ValueError)
    assert "\n" not in msg and msg.strip() == msg and msg
    return msg


# ---- checkpoints ---------------------------------------------------------------------------------------------------


def test_checkpoint_round_trip(tmp_path):
    path = tmp_path / "sub" / "model.ckpt"  # parent folders are created
    payload = _payload()
    assert save_checkpoint(path, payload, kind="gaussians", version=2) == path
    got = load_checkpoint(
        path,
        kind="gaussians",
        max_version=2,
        expected_keys=["model", "step", "config/preset", "model/net.0.weight"],
        expected_shapes={"model/net.0.weight": (3, 4), "model/net.0.bias": (3,), "xyz": (None, 3)},
    )
    assert got["step"] == 7 and got["config"] == {"preset": "cpu_tiny", "lr": 1e-3}
    assert torch.equal(got["model"]["net.0.weight"], payload["model"]["net.0.weight"])
    assert torch.equal(got["xyz"], payload["xyz"])
    assert sorted(os.listdir(path.parent)) == ["model.ckpt"]  # no temp files left behind


def test_checkpoint_header_on_disk(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"a": torch.ones(2)}, kind="miner", version=1)
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "mipstudio-checkpoint" and raw["kind"] == "miner" and raw["version"] == 1
    assert set(raw) == {"format", "kind", "version", "payload"}


def test_overwrite_replaces_previous_checkpoint(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 1}, kind="k", version=1)
    save_checkpoint(path, {"step": 2}, kind="k", version=1)
    assert load_checkpoint(path, kind="k")["step"] == 2
    assert os.listdir(tmp_path) == ["c.pt"]


def _exploding_save(obj, f, *args, **kwargs):
    f.write(b"PARTIAL-CHECKPOINT-BYTES" * 100)
    f.flush()
    raise OSError("disk full (simulated)")


def test_atomic_write_keeps_previous_file_when_writer_fails(tmp_path, monkeypatch):
    path = tmp_path / "model.ckpt"
    save_checkpoint(path, {"step": 1}, kind="k", version=1)
    before = path.read_bytes()
    monkeypatch.setattr(torch, "save", _exploding_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 2}, kind="k", version=1)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.ckpt"]
    monkeypatch.undo()
    assert load_checkpoint(path, kind="k")["step"] == 1


def test_atomic_write_leaves_nothing_when_first_write_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "save", _exploding_save)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "new.ckpt", {"step": 2}, kind="k", version=1)
    assert os.listdir(tmp_path) == []


def test_atomic_helpers(tmp_path):
    target = tmp_path / "notes.txt"
    with atomic_open(target, "w") as f:
        f.write("hello")
        assert not target.exists()  # nothing visible until the block ends
    assert target.read_text() == "hello"
    assert atomic_write(tmp_path / "b.bin", lambda f: f.write(b"\x00\x01")) == tmp_path / "b.bin"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(KeyError):
        atomic_write(target, lambda f: (f.write(b"junk"), {}["boom"]))
    assert target.read_text() == "hello"
    assert sorted(os.listdir(tmp_path)) == ["b.bin", "notes.txt"]
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(target, "a"):
            pass


def test_save_checkpoint_rejects_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="dict"):
        save_checkpoint(tmp_path / "x", [1, 2], kind="k", version=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="version"):
        save_checkpoint(tmp_path / "x", {}, kind="k", version=-1)
    assert os.listdir(tmp_path) == []


def test_error_missing_file(tmp_path):
    msg = _error(tmp_path / "nope.ckpt", kind="k")
    assert "not found" in msg and "nope.ckpt" in msg


def test_error_not_a_checkpoint_garbage(tmp_path):
    p = tmp_path / "garbage.ckpt"
    p.write_bytes(b"this is not a torch file\n" * 10)
    msg = _error(p, kind="k")
    assert "not a mipstudio checkpoint" in msg and "garbage.ckpt" in msg


def test_error_not_a_checkpoint_plain_torch_file(tmp_path):
    p = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(2)}, p)
    assert "not a mipstudio checkpoint" in _error(p, kind="k")
    torch.save(torch.zeros(3), p)
    assert "not a mipstudio checkpoint" in _error(p, kind="k")


def test_error_empty_file(tmp_path):
    p = tmp_path / "empty.ckpt"
    p.write_bytes(b"")
    assert "not a mipstudio checkpoint" in _error(p, kind="k")


def test_error_wrong_kind(tmp_path):
    p = tmp_path / "c.ckpt"
    save_checkpoint(p, {}, kind="nerf360", version=1)
    msg = _error(p, kind="gaussians")
    assert "kind" in msg and "'nerf360'" in msg and "'gaussians'" in msg


def test_error_newer_version_and_migration_of_older(tmp_path):
    p = tmp_path / "c.ckpt"
    save_checkpoint(p, {"a": 1}, kind="k", version=3)
    msg = _error(p, kind="k", max_version=2)
    assert "version 3" in msg and "newer" in msg and "2" in msg
    assert load_checkpoint(p, kind="k", max_version=3)["a"] == 1
    save_checkpoint(p, {"a": 1}, kind="k", version=1)
    got = load_checkpoint(p, kind="k", max_version=3, migrate=lambda pl, v: {**pl, "b": pl["a"] + v})
    assert got == {"a": 1, "b": 2}


def test_error_missing_keys_names_them(tmp_path):
    p = tmp_path / "c.ckpt"
    save_checkpoint(p, _payload(), kind="k", version=1)
    msg = _error(p, kind="k", expected_keys=["model", "optimizer", "model/net.1.weight"])
    assert "missing keys" in msg and "optimizer" in msg and "model/net.1.weight" in msg
    assert "model," not in msg  # present keys are not listed


def test_error_shape_mismatch_names_them(tmp_path):
    p = tmp_path / "c.ckpt"
    save_checkpoint(p, _payload(), kind="k", version=1)
    msg = _error(
        p,
        kind="k",
        expected_shapes={
            "model/net.0.weight": (3, 5),
            "model/net.0.bias": (3,),
            "xyz": (None, 4),
            "step": (1,),
            "absent": (2,),
        },
    )
    assert msg.count("shape mismatch") == 1
    assert "model/net.0.weight is (3, 4), expected (3, 5)" in msg
    assert "xyz is (5, 3), expected (*, 4)" in msg
    assert "step is int, not a tensor" in msg
    assert "absent missing" in msg
    assert "net.0.bias" not in msg  # the matching entry is not blamed


class _Opaque:  # module-level so it pickles
    def __init__(self) -> None:
        self.x = 1


def test_error_unsafe_pickle_is_refused_by_default(tmp_path):
    p = tmp_path / "c.ckpt"
    save_checkpoint(p, {"obj": _Opaque()}, kind="k", version=1)
    msg = _error(p, kind="k")
    assert "unsafe" in msg and "weights_only=False" in msg
    assert load_checkpoint(p, kind="k", weights_only=False)["obj"].x == 1


NOT_OURS = "is not a mipstudio checkpoint (not a torch file, or truncated); pass a checkpoint.pt written by `train`"


def test_error_random_bytes_is_not_a_checkpoint_not_unsafe(tmp_path):
    """torch reads random bytes as an 'unsafe pickle'; telling the user to trust the file would be wrong."""
    p = tmp_path / "noise.pt"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    msg = _error(p, kind="k")
    assert msg == f"{p} {NOT_OURS}"
    assert "unsafe" not in msg and "weights_only" not in msg


@pytest.mark.parametrize("keep", [0.01, 0.5, 0.99])
def test_error_truncated_checkpoint_is_one_line(tmp_path, keep):
    """A checkpoint cut short (disk full, copy interrupted) gets the same one line, whatever torch raises."""
    p = tmp_path / "c.pt"
    save_checkpoint(p, _payload(), kind="k", version=1)
    data = p.read_bytes()
    p.write_bytes(data[: max(1, int(len(data) * keep))])
    assert _error(p, kind="k") == f"{p} {NOT_OURS}"


def test_load_field_names_a_bad_checkpoint_in_one_line(tmp_path):
    from methods.ngssf.train import load_field

    p = tmp_path / "field.pt"
    p.write_bytes(np.random.default_rng(1).integers(0, 256, 1000, dtype=np.uint8).tobytes())
    with pytest.raises(CheckpointError) as ei:
        load_field(p)
    assert str(ei.value) == f"{p} {NOT_OURS}"


def test_checkpoint_error_is_always_one_line():
    assert str(CheckpointError("a\nb\n  c")) == "a b c"
    assert mio.FORMAT == "mipstudio-checkpoint"


# ---- metrics -------------------------------------------------------------------------------------------------------


@pytest.fixture
def img():
    return np.random.default_rng(0).random((32, 40, 3))


def test_mse_and_psnr_constant_offset(img):
    b = img + 0.1
    assert mse(img, b) == pytest.approx(0.01)
    assert psnr(img, b) == pytest.approx(20.0)  # 10·log10(1 / 0.01)
    assert psnr(img * 255, img * 255 + 25.5, max_val=255) == pytest.approx(20.0)
    assert psnr(img, img + 0.01) == pytest.approx(40.0)
    assert psnr(img, img) == float("inf")
    t = torch.from_numpy(img).float()
    v = psnr(t, t + 0.1)
    assert isinstance(v, torch.Tensor) and v.item() == pytest.approx(20.0, abs=1e-3)
    assert isinstance(psnr(img, img + 0.1), float)
    with pytest.raises(ValueError, match="shape"):
        mse(img, img[:-1])


def test_gaussian_window():
    g = gaussian_window(11, 1.5)
    assert g.shape == (11,) and g.sum().item() == pytest.approx(1.0)
    assert torch.argmax(g).item() == 5 and torch.allclose(g, g.flip(0))
    assert (g[5] / g[6]).item() == pytest.approx(np.exp(1 / (2 * 1.5**2)), rel=1e-5)


def test_psnr_mask_scores_only_the_masked_pixels(img):
    """The views score only the pixels they drew; the mask must ignore everything else, channels averaged."""
    b = img + 0.1
    b[:, 20:] += 0.4  # right half far off: must not count
    mask = np.zeros(img.shape[:2], bool)
    mask[:, :20] = True
    assert psnr(img, b, mask=mask) == pytest.approx(20.0)
    assert psnr(img[..., 0], b[..., 0], mask=mask) == pytest.approx(20.0)  # HxW images
    assert psnr(img, b, max_val=2.0, mask=mask) == pytest.approx(20.0 + 20 * np.log10(2))
    tv = psnr(torch.from_numpy(img), torch.from_numpy(b), mask=torch.from_numpy(mask))
    assert isinstance(tv, torch.Tensor) and tv.item() == pytest.approx(20.0, abs=1e-3)
    assert psnr(img, img + 0.0, mask=mask) == float("inf")
    assert psnr(img, b, mask=np.zeros_like(mask)) is None  # nothing drawn: nothing to score
    assert psnr(torch.from_numpy(img), torch.from_numpy(b), mask=torch.zeros(32, 40, dtype=torch.bool)) is None
    with pytest.raises(ValueError, match="mask"):
        psnr(img, b, mask=mask[:, :-1])


def test_ssim_is_scikit_image(img):
    """Evaluation SSIM must be scikit-image's own number, for numpy and torch inputs alike."""
    from skimage.metrics import structural_similarity

    noisy = np.clip(img + 0.08 * np.random.default_rng(3).standard_normal(img.shape), 0, 1)
    ref = structural_similarity(img, noisy, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=1.0)
    assert ssim(img, noisy) == ref
    got = ssim(torch.from_numpy(img), torch.from_numpy(noisy))
    assert isinstance(got, float) and got == pytest.approx(ref, abs=1e-12)
    assert ssim(img, noisy, gaussian=False) == structural_similarity(img, noisy, channel_axis=2, data_range=1.0)
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    assert ssim(img, noisy) == pytest.approx(ssim(noisy, img), abs=1e-12)


def test_ssim_decreases_with_noise(img):
    rng = np.random.default_rng(2)
    noise = rng.standard_normal(img.shape)
    scores = [ssim(img, img + s * noise) for s in (0.0, 0.02, 0.05, 0.1, 0.2, 0.4)]
    assert all(b < a for a, b in zip(scores, scores[1:])), scores


def test_ssim_constant_images_closed_form():
    # constant images: variances and covariance vanish, so SSIM = (2ab + C1) / (a² + b² + C1)
    a, b = 0.3, 0.7
    c1 = (0.01 * 1.0) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    x = np.full((20, 20, 3), a)
    y = np.full((20, 20, 3), b)
    assert ssim(x, y) == pytest.approx(expected, rel=1e-9)
    assert ssim(x[..., 0], y[..., 0]) == pytest.approx(expected, rel=1e-9)  # HxW
    assert 1 - dssim(torch.from_numpy(x), torch.from_numpy(y)).item() == pytest.approx(expected, rel=1e-9)


def test_ssim_tiny_images_and_bad_shapes():
    tiny = np.random.default_rng(4).random((6, 8, 3))  # smaller than the 11-tap window: the window shrinks
    assert ssim(tiny, tiny) == pytest.approx(1.0)
    assert ssim(tiny, tiny[::-1].copy()) < 0.9
    assert np.isnan(ssim(tiny[:2], tiny[:2] * 0.5, gaussian=False))  # a uniform window needs 3 px per side
    with pytest.raises(ValueError, match="shape"):
        ssim(np.zeros((4, 4, 3)), np.zeros((4, 4, 4)))


def _photo_pair() -> tuple[np.ndarray, np.ndarray]:
    """A real photo (texture, edges, flat sky) and a blurred + noisy copy: the case a training loss sees."""
    from scipy.ndimage import gaussian_filter
    from skimage import data

    photo = data.astronaut()[96:224, 160:288].astype(np.float64) / 255.0  # 128² crop of the face and suit
    rng = np.random.default_rng(5)
    other = np.clip(gaussian_filter(photo, (0.8, 0.8, 0)) + 0.03 * rng.standard_normal(photo.shape), 0, 1)
    return photo, other


def test_training_dssim_agrees_with_scikit_image_on_a_photo():
    """The 3DGS loss uses our torch SSIM; it must be the same SSIM the tables report (scikit-image)."""
    from skimage.metrics import structural_similarity

    a, b = _photo_pair()
    ref = structural_similarity(a, b, channel_axis=2, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False)
    assert 0.3 < ref < 0.95  # a meaningful pair, not identical and not unrelated
    got64 = 1 - dssim(torch.from_numpy(a), torch.from_numpy(b)).item()
    assert got64 == pytest.approx(ref, abs=1e-9)
    nchw = lambda x: torch.from_numpy(x).float().permute(2, 0, 1)[None]  # noqa: E731 - the trainer's layout
    assert 1 - dssim(nchw(a), nchw(b)).item() == pytest.approx(ref, abs=1e-4)


def test_dssim_is_differentiable_and_handles_tiny_images():
    x = torch.rand(2, 3, 16, 16)
    y = torch.rand(2, 3, 16, 16, requires_grad=True)
    loss = dssim(x, y)
    loss.backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
    assert dssim(x, x).item() == pytest.approx(0.0, abs=1e-5)
    tiny = torch.rand(1, 3, 6, 8)
    assert dssim(tiny, tiny).item() == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="shape"):
        dssim(torch.zeros(4, 4, 3), torch.zeros(4, 4, 4))


def test_staged_folder_publishes_whole_folders_or_nothing(tmp_path):
    from assets.cache import staged_folder

    out = tmp_path / "data"
    with pytest.raises(RuntimeError, match="boom"):
        with staged_folder(out) as tmp:
            (tmp / "a.txt").write_text("half")
            raise RuntimeError("boom")
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == []  # no temp folder left behind
    with staged_folder(out) as tmp:
        (tmp / "a.txt").write_text("v1")
    assert (out / "a.txt").read_text() == "v1"
    with pytest.raises(FileExistsError, match="not empty"):
        with staged_folder(out):
            pass
    with staged_folder(out, overwrite=True) as tmp:
        (tmp / "b.txt").write_text("v2")
        assert (out / "a.txt").read_text() == "v1"  # the old folder stays until the new one is complete
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"] and len(list(tmp_path.iterdir())) == 1
