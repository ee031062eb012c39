"""Training data, losses and checkpoint/resume on a handful of real photos and one real clip."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import DATA, shared_path
from vidcolor.color import gray_to_lightness, luma_lightness
from vidcolor.correspondence.flow import warp
from vidcolor.training.default import (
    TrainConfig,
    TrainingData,
    load_checkpoint,
    load_training_data,
    make_batch,
    photo_sample,
    train,
    warp_tensor,
)


@pytest.fixture(scope="module")
def tiny() -> tuple[TrainConfig, TrainingData]:
    shared_path("photos")
    config = TrainConfig(
        data_root=str(DATA),
        crop=64,
        batch_size=2,
        unroll=2,
        iterations=6,
        warmup=2,
        val_every=0,
        max_photos=12,
        max_clips=1,
        photo_short_side=128,
        clip_short_side=96,
        checkpoint_minutes=1e9,
    )
    data = load_training_data(config, log=lambda _: None)
    return config, data


def test_data_keeps_holdout_out_of_training(tiny: tuple[TrainConfig, TrainingData]) -> None:
    config, data = tiny
    assert set(data.holdout) == set(config.holdout)
    assert not set(data.clips) & set(config.holdout)
    assert len(data.photos) >= 8


def test_batches_are_a_function_of_seed_and_iteration(tiny: tuple[TrainConfig, TrainingData]) -> None:
    config, data = tiny
    a, b = make_batch(data, config, 3), make_batch(data, config, 3)
    c = make_batch(data, config, 4)
    assert torch.equal(a.l, b.l) and torch.equal(a.ab, b.ab) and torch.equal(a.match, b.match)
    assert not torch.equal(a.l, c.l)
    assert a.l.shape == (2, 2, 1, 64, 64) and a.ab.shape == (2, 2, 2, 64, 64)


def test_pseudo_video_flow_and_correspondence_are_exact(tiny: tuple[TrainConfig, TrainingData]) -> None:
    """Frame t pulled back by the generated flow is frame t-1; matched cells show the same content."""
    config, data = tiny
    cfg = replace(config, crop=96, unroll=3, p_occluder=0.0, p_unrelated_ref=0.0, p_identity_ref=0.0, p_luma_input=0.0)
    errors, match_errors = [], []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        sample = photo_sample(rng, data.photos, cfg)
        truth_ab = sample.ab
        for t in (1, 2):
            pulled = warp(truth_ab[t - 1], sample.flow[t])
            mask = sample.valid[t]
            assert mask.mean() > 0.5
            errors.append(np.abs(pulled - truth_ab[t])[mask].mean())
        cells = 96 // 8
        ref8 = sample.ref_ab.reshape(cells, 8, cells, 8, 2).mean(axis=(1, 3)).reshape(-1, 2)
        tgt8 = truth_ab[0].reshape(cells, 8, cells, 8, 2).mean(axis=(1, 3)).reshape(-1, 2)
        ok = sample.match[0] >= 0
        if ok.any():
            matched = np.abs(tgt8[ok] - ref8[sample.match[0][ok]]).mean()
            shuffled = np.abs(tgt8[ok] - ref8[np.random.default_rng(9).permutation(ref8.shape[0])[: ok.sum()]]).mean()
            match_errors.append((matched, shuffled))
    assert np.mean(errors) < 1.5  # Lab units, interpolation only
    assert match_errors and np.mean([m for m, _ in match_errors]) < 0.5 * np.mean([s for _, s in match_errors])


def test_warp_tensor_matches_numpy_warp() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((40, 50, 2)).astype(np.float32)
    flow = rng.normal(0, 2, (40, 50, 2)).astype(np.float32)
    expected = warp(image, flow)
    got = warp_tensor(torch.from_numpy(image).permute(2, 0, 1)[None], torch.from_numpy(flow).permute(2, 0, 1)[None])
    inner = (slice(4, -4), slice(4, -4))
    got_np = got[0].permute(1, 2, 0).numpy()[inner]
    # OpenCV's remap interpolates with 1/32-pixel fixed-point weights, hence the tolerance; the
    # opposite flow shows the test can tell a wrong convention apart
    assert np.abs(got_np - expected[inner]).mean() < 5e-3
    assert np.abs(got_np - warp(image, -flow)[inner]).mean() > 0.05


def test_luma_lightness_of_neutral_gray_is_its_lightness() -> None:
    gray = np.linspace(0, 1, 11, dtype=np.float32)
    rgb = np.stack([gray] * 3, axis=-1)
    np.testing.assert_allclose(luma_lightness(rgb), gray_to_lightness(gray), atol=1e-4)


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tiny: tuple[TrainConfig, TrainingData], tmp_path: Path) -> None:
    config, data = tiny
    whole = train(replace(config, out_dir=str(tmp_path / "whole")), log=lambda _: None, data=data, stop_at=4)
    part = replace(config, out_dir=str(tmp_path / "part"))
    train(part, log=lambda _: None, data=data, stop_at=2)
    state = load_checkpoint(tmp_path / "part" / "last.pt")
    assert state["iteration"] == 2
    resumed = train(part, log=lambda _: None, data=data, stop_at=4, resume=tmp_path / "part" / "last.pt")
    for (name, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), f"{name} differs after resume"
    # and training moved the weights at all
    fresh = train(replace(config, out_dir=str(tmp_path / "fresh")), log=lambda _: None, data=data, stop_at=0)
    assert any(not torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), whole.state_dict().values()))
    assert (tmp_path / "whole" / "train.log").read_text().count("it 4") == 1


def test_validation_exports_inference_weights(tiny: tuple[TrainConfig, TrainingData], tmp_path: Path) -> None:
    from vidcolor.colorizers.default import load_vcnet

    config, data = tiny
    cfg = replace(config, out_dir=str(tmp_path / "run"), val_every=2, val_frames=3, val_short_side=64)
    train(cfg, log=lambda _: None, data=data, stop_at=2, export=tmp_path / "exported.pt")
    model, meta = load_vcnet(tmp_path / "exported.pt")
    assert meta["iteration"] == 2
    assert "psnr/davis/dog" in meta["validation"]  # type: ignore[operator]
    assert (tmp_path / "run" / "best.pt").is_file()


def test_warm_start_copies_matching_and_grown_layers(tmp_path: Path) -> None:
    from vidcolor.models.vcnet import build_vcnet
    from vidcolor.training.default import inference_payload, warm_start

    torch.manual_seed(1)
    source = build_vcnet()
    for p in source.parameters():
        torch.nn.init.normal_(p, std=0.01)
    torch.save(inference_payload(source, {}), tmp_path / "w.pt")
    target = build_vcnet()
    assert warm_start(target, tmp_path / "w.pt") == len(source.state_dict())
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        assert torch.equal(a, b), name
    # a layer that grew keeps the old weights in its leading slice and zeros elsewhere
    state = source.state_dict()
    state["refine1.weight"] = state["refine1.weight"][:, :6].clone()
    torch.save({"format": "vidcolor-vcnet-1", "config": source.cfg.to_dict(), "state_dict": state}, tmp_path / "old.pt")
    grown = build_vcnet()
    warm_start(grown, tmp_path / "old.pt")
    assert torch.equal(grown.refine1.weight[:, :6], state["refine1.weight"])
    assert grown.refine1.weight[:, 6:].abs().sum() == 0


def test_widening_the_network_keeps_what_the_narrow_one_computes(tmp_path: Path) -> None:
    """`vidcolor train --channels` with --init-from: a wider model starts as the shipped one."""
    from vidcolor.colorizers.default import DefaultColorizer, default_weights_path
    from vidcolor.models.vcnet import VCNet, VCNetConfig
    from vidcolor.references import Reference
    from vidcolor.training.default import inference_payload, warm_start

    wide = VCNet(VCNetConfig(channels=(24, 48, 96), match_channels=64))
    assert warm_start(wide, default_weights_path()) > 0
    torch.save(inference_payload(wide, {}), tmp_path / "wide.pt")
    yy, xx = np.mgrid[0:96, 0:160].astype(np.float32)
    frames = [np.clip(np.dstack([xx + 6 * i, yy * 2, 255 - xx]), 0, 255).astype(np.uint8) for i in range(4)]
    reference = Reference.from_array(frames[0], key="gradient")
    outputs = []
    for weights in (default_weights_path(), tmp_path / "wide.pt"):
        colorizer = DefaultColorizer(weights=weights)
        outputs.append([colorizer.step(luma_lightness(f.astype(np.float32) / 255.0), reference).ab for f in frames])
    assert sum(p.numel() for p in wide.parameters()) > 2 * sum(
        p.numel() for p in DefaultColorizer().model.parameters()
    )
    for narrow_ab, wide_ab in zip(*outputs):
        assert np.abs(narrow_ab).max() > 1.0  # colour was produced, so the comparison means something
        np.testing.assert_allclose(wide_ab, narrow_ab, atol=1e-3)


@pytest.mark.parametrize(("arguments", "message"), [
    *((["--channels", bad], "--channels takes three positive widths") for bad in ("16,32", "16,x,64", "16,0,64")),
    (["--unroll", "0"], "--unroll takes the number of frames"),
    *(([flag, "-1"], f"{flag} takes a weight of 0 or more") for flag in ("--mse-weight", "--l1-weight")),
    *(([flag, bad], f"{flag} takes a fraction between 0 and 1")
      for flag in ("--clip-share", "--color-jitter", "--far-ref", "--retrieved-ref") for bad in ("-0.1", "1.5")),
    *(([flag, "-1"], f"{flag} takes a weight of 0 or more") for flag in ("--context-weight", "--retrieved-l1")),
    (["--warmup", "-1"], "--warmup takes a number of iterations"),
    *((["--semantic-strides", bad], "--semantic-strides takes trunk strides among 8,16,32") for bad in ("16,32", "8,x", "8,64")),
    *((bad, "--semantic-blend needs --semantic") for bad in (["--semantic-blend"], ["--semantic-blend", "--semantic"])),
    (["--semantic-only", "--semantic"], "--semantic-only needs --semantic and --init-from"),
])
def test_train_command_refuses_a_bad_option_with_a_message(arguments: list[str], message: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from vidcolor.training.default import main

    with pytest.raises(SystemExit):
        main(arguments)
    assert message in capsys.readouterr().err


def test_squared_error_term_adds_its_weight_times_the_mean_squared_error(tiny: tuple[TrainConfig, TrainingData]) -> None:
    """`--mse-weight`: the total grows by exactly w_mse × mean((pred − truth)²), the L2 that PSNR scores."""
    from vidcolor.models.vcnet import build_vcnet
    from vidcolor.training.default import compute_losses

    config, data = tiny
    torch.manual_seed(0)
    model = build_vcnet()
    batch = make_batch(data, config, 1)
    with torch.no_grad():
        plain = compute_losses(model, batch, replace(config, w_mse=0.0), 1)
        weighted = compute_losses(model, batch, replace(config, w_mse=3.0), 1)
    assert float(plain["mse"]) > 0
    assert torch.allclose(weighted["mse"], plain["mse"])
    assert torch.allclose(weighted["total"] - plain["total"], 3.0 * plain["mse"], rtol=1e-4, atol=1e-7)
    # squared error of ab/110 errors (well below 1) is smaller than their absolute error
    assert float(plain["mse"]) < float(plain["l1"])


def test_clip_share_sets_where_sequences_come_from(tiny: tuple[TrainConfig, TrainingData]) -> None:
    """--clip-share 1: every sequence is cut from a clip (real motion, no known correspondence after
    frame 0); 0: every one is a photo's pseudo-video, whose correspondence is known exactly."""
    config, data = tiny
    from_clips = make_batch(data, replace(config, p_clip=1.0), 5)
    assert bool((from_clips.match[:, 1:] == -1).all())
    from_photos = make_batch(data, replace(config, p_clip=0.0, p_unrelated_ref=0.0, p_no_ref_batch=0.0), 5)
    assert bool((from_photos.match[:, 1:] >= 0).any(dim=-1).all())


def test_color_jitter_turns_frames_and_reference_alike_and_keeps_lightness() -> None:
    """--color-jitter: one chroma rotation and saturation change for the whole sequence and its
    reference (so copying the reference's colours stays the right answer), lightness kept."""
    from vidcolor.color import rgb_to_lab
    from vidcolor.training.default import _color_jitter

    rng = np.random.default_rng(4)
    frames = [np.clip(rng.normal(0.5, 0.12, (16, 16, 3)), 0.2, 0.8).astype(np.float32) for _ in range(3)]
    reference = frames[1].copy()
    new_frames, new_labs, new_reference = _color_jitter(np.random.default_rng(9), frames, reference, 25.0)
    np.testing.assert_allclose(new_reference, new_frames[1], atol=1e-6)  # the same colours turn the same way
    np.testing.assert_allclose(new_labs[0], rgb_to_lab(new_frames[0]), atol=1e-4)
    before, after = rgb_to_lab(frames[0]), new_labs[0]
    assert np.abs(after[..., 0] - before[..., 0]).max() < 1.0  # muted colours stay in gamut: L kept
    turned = np.degrees(np.angle((after[..., 1] + 1j * after[..., 2]) / (before[..., 1] + 1j * before[..., 2])))
    saturated = np.hypot(before[..., 1], before[..., 2]) > 5
    assert 1.0 < abs(np.median(turned[saturated])) <= 25.5  # a real, bounded rotation
    assert not np.allclose(after[..., 1:], before[..., 1:], atol=1.0)
