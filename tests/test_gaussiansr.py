"""GaussianSR / LIIF: the splat renderer against closed forms and brute force, coordinates, the eval protocol by
hand, checkpoints and resume, a tiny training against bicubic, and the commands' bad input."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from methods.gaussiansr.config import ModelConfig, preset
from methods.gaussiansr.evaluate import degrade, sr_psnr
from methods.gaussiansr.model import (
    GaussianSR, LIIF, Encoded, build_model, normalise, pixel_centres, splat, tile_average, upscale)


def _gauss_map(h, w, sx, sy, rho, op):
    return torch.tensor([sx, sy, rho, op], dtype=torch.float32)[None, :, None, None].expand(1, 4, h, w).contiguous()


def _inv_cov(sx, sy, rho):
    return np.linalg.inv(np.array([[sx * sx + 1e-5, rho * sx * sy], [rho * sx * sy, sy * sy + 1e-5]]))


def test_one_gaussian_gives_the_closed_form_weights_at_hr_pixels():
    h, w, s = 6, 8, 3
    feat = torch.zeros(1, 1, h, w)
    feat[0, 0, 2, 3] = 1.0  # the only non-zero feature: LR pixel (row 2, col 3)
    sx, sy, rho, op = 0.7, 0.4, 0.3, 0.8
    coords = pixel_centres(h * s, w * s).reshape(1, -1, 2)
    got = splat(feat, _gauss_map(h, w, sx, sy, rho, op), coords, neighbours=5)[0, :, 0].numpy()
    # HR pixel (i, j) centre in LR pixel units: (j + 0.5) / s - 0.5
    jj, ii = np.meshgrid(np.arange(w * s), np.arange(h * s))
    u, v = (jj + 0.5) / s - 0.5, (ii + 0.5) / s - 0.5
    d = np.stack([u - 3, v - 2], -1).reshape(-1, 2)
    want = op * np.exp(-0.5 * np.einsum("qi,ij,qj->q", d, _inv_cov(sx, sy, rho), d))
    near = (np.abs(np.round(u) - 3) <= 2) & (np.abs(np.round(v) - 2) <= 2)  # the pixel is in their 5x5
    want = np.where(near.reshape(-1), want, 0.0)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert want.max() > 0.79 and (want > 0.01).sum() > 20  # the test covers a real footprint


@pytest.mark.parametrize("offset", [0.0, -0.5])
def test_the_no_tile_renderer_equals_a_brute_force_sum_over_all_lr_pixels(offset):
    g = torch.Generator().manual_seed(0)
    h, w, c = 6, 7, 4
    feat = torch.randn(1, c, h, w, generator=g)
    gauss = torch.stack([0.15 + 0.3 * torch.rand(h, w, generator=g), 0.15 + 0.3 * torch.rand(h, w, generator=g),
                         1.8 * torch.rand(h, w, generator=g) - 0.9, torch.rand(h, w, generator=g)])[None]
    coords = torch.rand(1, 500, 2, generator=g) * 2.2 - 1.1  # some points beyond the border
    got = splat(feat, gauss, coords, neighbours=5, centre_offset=offset)[0].numpy()
    u = (coords[0, :, 0].numpy() + 1) * w / 2 - 0.5
    v = (coords[0, :, 1].numpy() + 1) * h / 2 - 0.5
    want = np.zeros((500, c))
    for y in range(h):
        for x in range(w):
            sx, sy, rho, op = gauss[0, :, y, x].double().numpy()
            d = np.stack([u - (x + offset), v - (y + offset)], -1)
            wgt = op * np.exp(-0.5 * np.einsum("qi,ij,qj->q", d, _inv_cov(sx, sy, rho), d))
            want += wgt[:, None] * feat[0, :, y, x].double().numpy()[None]
    np.testing.assert_allclose(got, want, atol=2e-5)


def test_at_scale_1_a_pass_through_decoder_returns_the_features_at_pixel_centres():
    """No half-pixel shift: LR pixel j's Gaussian sits on pixel j's centre, and the bicubic channels are exact at
    centres, so with point-like Gaussians of opacity 1 the HR feature map at scale 1 is the encoder's output."""
    cfg = preset("test_tiny").model
    model = GaussianSR(cfg).eval()
    with torch.no_grad():
        model.bank.log_sigma.fill_(math.log(0.05))
        model.bank.opacity_logit.fill_(30.0)
    lr = normalise(torch.rand(1, 3, 9, 11))
    enc = model.encode(lr)
    coords = pixel_centres(9, 11).reshape(1, -1, 2)
    got = model.features(enc, coords)[0]
    want = enc.feat[0].permute(1, 2, 0).reshape(-1, cfg.n_feats)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_liif_with_a_pass_through_decoder_is_bilinear_interpolation():
    """The local ensemble's opposite-area weights are bilinear weights: decoding each latent to its own centre
    feature must reproduce bilinear interpolation of the features between pixel centres."""
    cfg = ModelConfig(kind="liif", n_resblocks=1, n_feats=6, splat_channels=4, hidden=8, layers=1)
    model = LIIF(cfg).eval()
    c = cfg.n_feats

    class Centre(torch.nn.Module):  # unfold is channel-major: channel k's own (centre) value is at 9k + 4
        def forward(self, inp):
            return inp[..., [4, 13, 22]]

    model.mlp = Centre()
    feat = torch.randn(1, c, 5, 6)
    b, _, h, w = feat.shape
    enc = Encoded(lr=torch.zeros(1, 3, h, w),
                  feat=torch.nn.functional.unfold(feat, 3, padding=1).reshape(1, 9 * c, h, w))
    g = torch.Generator().manual_seed(1)
    coords = (torch.rand(1, 300, 2, generator=g) * 2 - 1) * torch.tensor([1 - 1.0 / w, 1 - 1.0 / h])  # interior
    got = model.query(enc, coords, torch.tensor([[0.1, 0.1]]))
    want = torch.nn.functional.grid_sample(feat[:, :3], coords[:, :, None], mode="bilinear", align_corners=False)
    torch.testing.assert_close(got[0], want[0, :, :, 0].T, atol=1e-5, rtol=1e-5)


def test_faithful_mode_shares_49_parameter_sets_over_batch_and_tiles():
    g = torch.Generator().manual_seed(2)
    p = torch.rand(3, 4, 10, 16, generator=g)
    got = tile_average(p)
    for r in range(10):
        for c in range(16):
            same = p[:, :, r % 7::7, c % 7::7]  # every pixel at this tile position, in every image
            torch.testing.assert_close(got[1, :, r, c], same.permute(1, 0, 2, 3).reshape(4, -1).mean(1))


def test_the_eval_protocol_matches_hand_computed_values():
    hr = torch.rand(20, 23, 3, generator=torch.Generator().manual_seed(3))
    crop, lr = degrade(hr, 3.0)
    assert tuple(crop.shape) == (18, 21, 3) and tuple(lr.shape) == (6, 7, 3)  # floor(20/3)=6 -> 18 rows
    crop, lr = degrade(hr, 2.5)
    assert tuple(lr.shape) == (8, 9, 3) and tuple(crop.shape) == (20, 22, 3)  # round(8*2.5)=20, round(9*2.5)=22
    sr = hr.clone()
    sr[..., 0] += 0.1                      # a red error of 0.1 everywhere
    sr[:2] += 0.5                          # and a large error in the top 2 rows, inside the x2 shave
    y = 0.1 * 65.738 / 256
    assert sr_psnr(sr, hr, 2, "y_psnr") == pytest.approx(-10 * math.log10(y * y), abs=1e-5)
    # rgb: shave 2 + 6 = 8, the red channel alone carries the error: mse = 0.01 / 3
    assert sr_psnr(sr, hr, 2, "rgb_psnr") == pytest.approx(-10 * math.log10(0.01 / 3), abs=1e-5)
    assert sr_psnr(sr, hr, 1, "y_psnr") < sr_psnr(sr, hr, 2, "y_psnr")  # shave 1 keeps one bad row


def test_upscale_regions_and_chunks_give_the_same_pixels():
    torch.manual_seed(0)
    model = build_model(preset("test_tiny").model).eval()
    lr = torch.rand(12, 10, 3)
    full = upscale(model, lr, 37, 31, chunk=10_000)
    part = upscale(model, lr, 37, 31, chunk=50, region=(5, 20, 3, 29))
    torch.testing.assert_close(part, full[5:20, 3:29], atol=2e-4, rtol=0)  # float rounding of shared features
    assert tuple(full.shape) == (37, 31, 3)
    # huge inputs are encoded in tiles (plus the receptive-field margin): the same pixels, bounded memory
    big = torch.rand(70, 90, 3)
    whole = upscale(model, big, 173, 221, tile=1000)
    tiled = upscale(model, big, 173, 221, tile=24, chunk=777)
    torch.testing.assert_close(tiled, whole, atol=5e-5, rtol=0)


def test_resume_continues_bit_exactly(tmp_path):
    from methods.gaussiansr.train import SRTrainer

    cfg = preset("test_tiny", iterations=6, val_photo="", out_dir=str(tmp_path / "a"))
    straight = SRTrainer(cfg)
    for _ in range(6):
        straight.step()
    first = SRTrainer(cfg.with_(out_dir=str(tmp_path / "b")))
    for _ in range(3):
        first.step()
    path = first.save_checkpoint()
    resumed = SRTrainer(cfg.with_(out_dir=str(tmp_path / "b")), resume=path)
    for _ in range(3):
        resumed.step()
    assert resumed.history["loss"] == straight.history["loss"]
    for a, b in zip(resumed.model.state_dict().values(), straight.model.state_dict().values()):
        assert torch.equal(a, b)


def test_a_checkpoint_of_another_family_is_one_clear_error(tmp_path):
    from methods.gaussiansr.train import load_sr_model
    from methods.io import CheckpointError, save_checkpoint

    path = save_checkpoint(tmp_path / "other.pt", {"x": torch.zeros(2)}, kind="ngssf", version=1)
    with pytest.raises(CheckpointError, match="wrong checkpoint kind 'ngssf', expected 'gaussiansr'"):
        load_sr_model(path)


def test_a_tiny_training_beats_bicubic_at_x2_on_a_held_out_photo(tmp_path):
    """test_tiny (a few hundred steps on astronaut and coffee) against bicubic on chelsea, never trained on."""
    from methods.gaussiansr.train import SRTrainer

    trainer = SRTrainer(preset("test_tiny", out_dir=str(tmp_path)))
    summary = trainer.run(lambda p: None, lambda: False)
    gain = summary["val_x2"] - summary["bicubic_x2"]
    assert gain >= MIN_TINY_GAIN_DB, summary


MIN_TINY_GAIN_DB = 0.3


# ----- commands -----------------------------------------------------------------------------------------------------
def _main(*argv):
    import main

    return main.main(list(argv))


def test_sr_writes_the_scaled_image_and_refuses_bad_input(tmp_path, capsys):
    import imageio.v3 as iio

    from methods.gaussiansr.train import SRTrainer

    ckpt = SRTrainer(preset("test_tiny", val_photo="", out_dir=str(tmp_path / "run"))).save_checkpoint()
    src = tmp_path / "in.png"
    iio.imwrite(src, (np.random.default_rng(0).random((20, 30)) * 255).astype(np.uint8))  # grey
    out = tmp_path / "out.png"
    assert _main("sr", str(src), "--scale", "3.7", "--out", str(out), "--checkpoint", str(ckpt)) == 0
    assert iio.imread(out).shape == (74, 111, 3)  # round(20 * 3.7), round(30 * 3.7)
    assert "grey image: repeated to RGB" in capsys.readouterr().err
    assert _main("sr", str(src), "--scale", "0.5", "--out", str(out)) == 2
    assert "argument --scale: expected a scale >= 1" in capsys.readouterr().err
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert _main("sr", str(bad), "--scale", "2", "--out", str(tmp_path / "x.png")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.png" in err[0] and not (tmp_path / "x.png").exists()
    assert _main("sr", str(src), "--scale", "2", "--out", str(tmp_path / "y.png"),
                 "--checkpoint", str(src)) == 1
    assert "not a mipstudio checkpoint" in capsys.readouterr().err


def test_eval_prints_rows_and_writes_the_json_schema(tmp_path):
    from methods.gaussiansr.train import SRTrainer

    ckpt = SRTrainer(preset("test_tiny", val_photo="", out_dir=str(tmp_path / "run"))).save_checkpoint()
    out = tmp_path / "eval.json"
    assert _main("eval", "gaussiansr", "--images", "chelsea", "--scales", "2,3.5", "--checkpoint", str(ckpt),
                 "--liif", str(ckpt), "--faithful-checkpoint", str(ckpt), "--max-side", "96",
                 "--json", str(out)) == 0
    data = json.loads(out.read_text())
    assert data["metric"] == "rgb_psnr"
    assert set(data["rows"]) == {"bicubic", "liif", "gaussiansr", "gaussiansr-faithful"}
    assert set(data["rows"]["bicubic"]) == {"2", "3.5"}
    assert all(10 < v < 60 for row in data["rows"].values() for v in row.values())


# ----- the SR view's source and the Mipmap-GS provider ---------------------------------------------------------------
def _tiny_models():
    torch.manual_seed(0)
    cfg = preset("test_tiny").model
    return {"gaussiansr": build_model(cfg).eval(), "liif": build_model(cfg.with_(kind="liif")).eval()}


def test_the_view_encodes_only_the_visible_region_and_matches_the_whole_image():
    """Zoomed in on part of the image, the source encodes a crop (plus a receptive-field margin) and its pixels
    equal the whole-image upscale at the same points."""
    from methods.gaussiansr.live_source import SROptions, SRSource
    from render.live import RenderRequest

    models = _tiny_models()
    src = SRSource(models)
    zoom = 4.0
    opts = SROptions(image="chelsea", mode="gaussiansr", compare="off", pretend_lr=4.0, gaussians=False)
    frame = src.render(RenderRequest(64, 48, zoom=zoom, center=(10.0, -6.0), options=opts))
    region = src._encoders[("enc", "chelsea", 4.0, "gaussiansr")]
    (cy0, cy1, cx0, cx1), _ = region._last
    w, h = src.image_size
    assert (cy1 - cy0) * (cx1 - cx0) < 0.6 * w * h  # a crop, not the whole image
    # the same pixels from the whole image: screen pixel (i, j) looks at LR point u = w/2 + cx + (j + 0.5 - 32)/zoom
    lr = src._shown("chelsea", 4.0)[1]
    full = upscale(models["gaussiansr"], lr, round(h * zoom), round(w * zoom))
    u0 = w / 2 + 10.0 - 32 / zoom  # the frame's left edge in LR pixels: output column (u0 * zoom) on the x4 grid
    v0 = h / 2 - 6.0 - 24 / zoom
    x, y = int(round(u0 * zoom)), int(round(v0 * zoom))
    torch.testing.assert_close(torch.from_numpy(frame.image), full[y:y + 48, x:x + 64], atol=2e-4, rtol=0)


def test_pretend_lr_psnr_and_the_gaussian_overlay():
    from methods.gaussiansr.evaluate import degrade, sr_psnr
    from methods.gaussiansr.live_source import OVERLAY_MIN_ZOOM, PSNR_CROP, SROptions, SRSource
    from render.live import RenderRequest

    models = _tiny_models()
    src = SRSource(models)
    opts = SROptions(image="coins", mode="gaussiansr", compare="bicubic", pretend_lr=3.0, gaussians=True)
    frame = src.render(RenderRequest(96, 64, zoom=2.0, options=opts))
    assert frame.aux["modes"] == {"left": "gaussiansr", "right": "bicubic"}
    from assets.photos import load_photo

    orig = torch.from_numpy(load_photo("coins"))
    h, w = orig.shape[:2]
    side_y, side_x = min(h, PSNR_CROP), min(w, PSNR_CROP)
    crop = orig[(h - side_y) // 2:(h - side_y) // 2 + side_y, (w - side_x) // 2:(w - side_x) // 2 + side_x]
    hr, lr = degrade(crop, 3.0)
    want = sr_psnr(upscale(models["gaussiansr"], lr, hr.shape[0], hr.shape[1]), hr, 3.0, "rgb_psnr")
    assert frame.aux["psnr"]["gaussiansr"] == pytest.approx(want, abs=1e-6)
    # the overlay appears only from OVERLAY_MIN_ZOOM and only on the GaussianSR side of the split
    near = src.render(RenderRequest(96, 64, zoom=OVERLAY_MIN_ZOOM * 2, options=opts)).image
    plain = src.render(RenderRequest(96, 64, zoom=OVERLAY_MIN_ZOOM * 2,
                                     options=SROptions(**{**opts.__dict__, "gaussians": False}))).image
    changed = np.abs(near - plain).max(-1) > 1e-6
    assert changed[:, :40].mean() > 0.02 and not changed[:, 52:].any()


def test_opening_a_bad_image_in_the_view_is_one_line(tmp_path):
    from methods.gaussiansr.live_source import SRSource

    bad = tmp_path / "x.png"
    bad.write_bytes(b"\x89PNG broken")
    with pytest.raises(ValueError, match="x.png") as e:
        SRSource(_tiny_models()).open_image(str(bad))
    assert "\n" not in str(e.value)


def test_the_view_keeps_only_the_newest_opened_images(tmp_path):
    from assets.cache import atomic_save_image
    from methods.gaussiansr.live_source import KEEP_OPENED, SRSource

    src = SRSource(_tiny_models())
    keys = []
    for i in range(KEEP_OPENED + 1):
        atomic_save_image(tmp_path / f"i{i}.png", np.full((8, 8, 3), i / 4, np.float32))
        keys.append(src.open_image(str(tmp_path / f"i{i}.png")))
    assert src.open_image(keys[1]) == keys[1]          # opened again: the newest now
    assert list(src._custom) == [keys[2], keys[1]] and src._original(keys[1])[0, 0, 0] == pytest.approx(0.25, abs=0.01)
    with pytest.raises(ValueError, match="i0.png was closed"):
        src._original(keys[0])


def test_gaussiansr_is_a_zoom_in_pseudo_gt_provider_for_mipmap_gs(monkeypatch):
    from methods.gaussians.mipmap import PSEUDO_GT, make_pseudo_gt, pseudo_gt_names
    from methods.gaussiansr import provider

    provider.register()
    assert "gaussiansr" in pseudo_gt_names(zoom_in=True) and "gaussiansr" not in pseudo_gt_names(zoom_in=False)
    model = _tiny_models()["gaussiansr"]
    monkeypatch.setattr(provider, "_model", lambda: model)
    renders = np.random.default_rng(0).random((2, 10, 12, 3)).astype(np.float32)
    out = make_pseudo_gt("gaussiansr", renders, (24, 20), zoom_in=True)
    assert out.shape == (2, 20, 24, 3) and PSEUDO_GT["gaussiansr"].zoom_in
    np.testing.assert_allclose(out[1], upscale(model, torch.from_numpy(renders[1]), 20, 24).numpy(), atol=1e-6)


def test_grid_queries_share_the_3x3_features_and_equal_point_queries():
    torch.manual_seed(3)
    model = build_model(preset("test_tiny").model).eval()
    assert model.config.decoder_kernel == 3
    enc = model.encode(normalise(torch.rand(1, 3, 11, 13)))
    grid = pixel_centres(29, 34)
    cell = torch.tensor([[2 / 34, 2 / 29]])
    with torch.no_grad():
        points = model.query(enc, grid.reshape(1, -1, 2), cell)[0].reshape(29, 34, 3)
        shared = model.query_grid(enc, grid, cell)
    torch.testing.assert_close(shared, points, atol=1e-4, rtol=0)


def test_the_jobs_panel_job_trains_resumably_and_reports_progress(tmp_path):
    from methods.gaussiansr.train import load_sr_model
    from methods.plugin import all_jobs

    job = all_jobs()["Train GaussianSR"].make_job(preset="test_tiny", iterations=3, out_dir=str(tmp_path / "j"))
    records = []
    result = job.run(records.append, lambda: False)
    assert [r.step for r in records] == [1, 2, 3] and result["steps"] == 3 and not result["cancelled"]
    assert records[-1].preview is not None and records[-1].preview.shape[1] == 3 * records[-1].preview.shape[0]
    model, payload = load_sr_model(result["checkpoint"])
    assert payload["step"] == 3 and "val_x4" in result
    stopped = all_jobs()["Train GaussianSR"].make_job(preset="test_tiny", out_dir=str(tmp_path / "k"))
    assert stopped.run(lambda p: None, lambda: True)["cancelled"]  # cancel: stops at once, still saves
