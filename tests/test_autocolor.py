"""The ``autocolor`` automatic model: decoding (bins, annealed mean, temperature), the shipped
weights, and what it makes of real pictures with no reference (faces, bigbuckbunny)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from helpers import shared_path, write_clip
from vidcolor.cli import main
from vidcolor.color import rgb_to_gray_lightness, rgb_to_lab
from vidcolor.colorizers import get_colorizer
from vidcolor.colorizers.autocolor import AutocolorColorizer
from vidcolor.colorizers.base import shipped_weights_path
from vidcolor.errors import InputError, WeightsMismatchError
from vidcolor.models.autocolor import AutocolorConfig, AutocolorDecoder, AutocolorNet
from vidcolor.models.eccv16 import Q, ab_bins
from vidcolor.models.efficientnet_lite import shared_backbone

#: The ten CelebA-HQ ``src`` faces: aligned 256x256 crops, never trained on (training/autocolor.TEST_PHOTOS).
FACES = ("female_039913", "female_051340", "female_069067", "female_091623", "female_172559",
         "male_005735", "male_006930", "male_016387", "male_191300", "male_196930")


@pytest.fixture(scope="module")
def colorizer() -> AutocolorColorizer:
    torch.set_num_threads(1)
    return AutocolorColorizer()


@pytest.fixture(scope="module")
def net() -> AutocolorNet:
    torch.manual_seed(0)
    return AutocolorNet(shared_backbone("cpu"), AutocolorConfig(widths=(8, 8, 8, 8))).eval()


def spike(*bins_and_logits: tuple[int, float]) -> torch.Tensor:
    """Logits (1, Q, 1, 1): -30 everywhere except the given bins."""
    logits = torch.full((1, Q, 1, 1), -30.0)
    for index, value in bins_and_logits:
        logits[0, index, 0, 0] = value
    return logits


def bin_of(a: float, b: float) -> int:
    return int(np.argmin(np.hypot(ab_bins()[:, 0] - a, ab_bins()[:, 1] - b)))


def test_decoding_reads_the_bins_and_anneals(net: AutocolorNet) -> None:
    gray, orange = bin_of(0, 0), bin_of(30, 60)
    assert tuple(ab_bins()[orange]) == (30.0, 60.0)
    # a single sure bin decodes to its centre at any temperature, with confidence near 1
    for temperature in (1.0, 0.38, 0.0):
        ab, confidence = net.decode(spike((orange, 10.0)), temperature)
        assert ab[0, :, 0, 0].tolist() == pytest.approx([30.0, 60.0], abs=1e-3)
        assert float(confidence) > 0.99
    # two equally likely bins: the mean (T = 1) is halfway, and stays halfway when annealed
    ab, confidence = net.decode(spike((gray, 5.0), (orange, 5.0)), 1.0)
    assert ab[0, :, 0, 0].tolist() == pytest.approx([15.0, 30.0], abs=1e-3)
    assert 0.8 < float(confidence) < 0.99
    # gray slightly less likely than orange: lowering T moves the colour toward the mode, steadily
    chroma = [float(torch.linalg.vector_norm(net.decode(spike((gray, 4.5), (orange, 5.0)), t)[0]))
              for t in (1.0, 0.5, 0.38, 0.2, 0.0)]
    assert chroma == sorted(chroma) and chroma[0] < 0.7 * chroma[-1]
    assert chroma[-1] == pytest.approx(float(np.hypot(30, 60)), abs=1e-3)
    # logit adjustment: taking log 3 out of orange's logit (as a rebalancing weight of 3 would have
    # put in) makes gray three times as likely as orange again
    adjustment = torch.zeros(Q)
    adjustment[orange] = float(np.log(3.0))
    ab, _ = net.decode(spike((gray, 5.0), (orange, 5.0)), 1.0, adjustment)
    assert ab[0, :, 0, 0].tolist() == pytest.approx([7.5, 15.0], abs=1e-3)


def test_decoder_grid_and_sizes(net: AutocolorNet) -> None:
    lightness = torch.linspace(0, 100, 64 * 96).reshape(1, 1, 64, 96)
    logits = net(lightness)
    assert logits.shape == (1, Q, 16, 24)
    with pytest.raises(ValueError, match="4 positive widths"):
        AutocolorDecoder(AutocolorConfig.from_dict({"widths": [8, 8, 8]}))



def test_training_windows_learning_rate_cycle_and_batchnorm_statistics() -> None:
    """The continuation recipe: a feature window cuts the same picture region at every stride, a new
    learning-rate cycle warms up again from its start, and the batch-norm statistics become plain
    averages over fixed training batches (deterministic, not the last batches' running average)."""
    from vidcolor.models.efficientnet_lite import FEATURE_CHANNELS
    from vidcolor.training.autocolor import (FeatureCache, TrainConfig, cycle_learning_rate, random_window,
                                             recompute_batchnorm)

    # every map holds its own pixel's picture coordinate (row of the 224 crop), so a window must agree
    rows = {s: np.broadcast_to((np.arange(224 // s) * s)[None, None, :, None], (6, 2, 224 // s, 224 // s)).astype(np.float16)
            for s in (32, 16, 8, 4)}
    cache = FeatureCache(rows, rows[4][:, :1], np.ascontiguousarray(np.moveaxis(rows[4], 1, -1)), [str(i) for i in range(6)])
    features, light, ab = cache.batch(np.arange(3), (2, 1, 4))
    assert {s: tuple(f.shape[-2:]) for s, f in features.items()} == {32: (4, 4), 16: (8, 8), 8: (16, 16), 4: (32, 32)}
    assert light.shape == (3, 1, 32, 32) and ab.shape == (3, 32, 32, 2)
    for stride, f in features.items():  # first row of the window: picture row 64 (cell 2 of stride 32)
        assert float(f[0, 0, 0, 0]) == 64 and float(f[0, 0, -1, 0]) == 64 + 128 - stride
    config = TrainConfig(crop_min=5)
    windows = {random_window(np.random.default_rng((25, i)), config) for i in range(200)}
    assert {w[2] for w in windows} == {5, 6, 7} and all(0 <= w[0] <= 7 - w[2] and 0 <= w[1] <= 7 - w[2] for w in windows)
    assert random_window(np.random.default_rng(0), TrainConfig()) is None
    cycle = TrainConfig(lr=1e-3, iterations=3000, cycle_start=800, warmup=100)
    assert cycle_learning_rate(cycle, 800) == pytest.approx(1e-5)  # warming up again
    assert cycle_learning_rate(cycle, 899) == pytest.approx(1e-3)
    assert cycle_learning_rate(cycle, 3000) == pytest.approx(1e-3 * cycle.lr_floor)
    # batch-norm statistics: the same fixed batches give the same numbers whatever the running state was
    channels = dict(FEATURE_CHANNELS)
    real = FeatureCache({s: np.random.default_rng(s).normal(size=(20, channels[s], 224 // s, 224 // s)).astype(np.float16)
                         for s in (32, 16, 8, 4)},
                        np.full((20, 1, 56, 56), 50, np.float16), np.zeros((20, 56, 56, 2), np.float16), [str(i) for i in range(20)])
    decoder = AutocolorDecoder(AutocolorConfig(widths=(8, 8, 8, 8)))
    config = TrainConfig(batch_size=4, bn_batches=3)
    norm = decoder.stage4[1]
    recompute_batchnorm(decoder, real, config)
    first = norm.running_mean.clone()
    norm.running_mean.fill_(7.0)
    recompute_batchnorm(decoder, real, config)
    assert torch.allclose(norm.running_mean, first) and float(first.abs().max()) > 0
    assert norm.momentum == 0.1 and int(norm.num_batches_tracked) == 3


def test_video_validation_split_sampling_and_scores() -> None:
    """Whole clips move out of training into the video validation split (their unmirrored frames),
    clip frames are drawn ``video_weight`` times a photo's, and the video scores see a cast: a decoder
    whose logits favour one orange bin loses to gray on a gray clip, and undoing that bin's prior helps."""
    from vidcolor.models.efficientnet_lite import FEATURE_CHANNELS
    from vidcolor.training.autocolor import FeatureCache, sampling_probabilities, video_split, video_validate

    names = [f"{base}{flip}" for base in ("photos/a.jpg", "clips/x/cat/00000.jpg", "clips/x/cat/00002.jpg",
                                           "clips/y/dog/00000.jpg", "clips/x/catalog/00000.jpg") for flip in ("", "#flip")]
    train, held = video_split(names, ["x/cat"])
    assert [names[i] for i in held] == ["clips/x/cat/00000.jpg", "clips/x/cat/00002.jpg"]  # not x/catalog, no mirrors
    assert len(train) == 6 and not set(train) & {2, 3, 4, 5}
    assert list(video_split(names, [])[0]) == list(range(10)) and len(video_split(names, [])[1]) == 0
    with pytest.raises(ValueError, match="x/nothing"):
        video_split(names, ["x/nothing"])
    assert sampling_probabilities(names, train, 1.0) is None
    draw = sampling_probabilities(names, train, 3.0)
    assert draw is not None and draw.sum() == pytest.approx(1.0)
    assert draw[[names[i].startswith("clips/") for i in train]].tolist() == pytest.approx([3 / 14] * 4)
    # two gray clips and one reddish one; the decoder: a zero decoder whose output bias favours orange
    channels = dict(FEATURE_CHANNELS)
    ab = np.zeros((3, 56, 56, 2), np.float16)
    ab[2, ..., 0] = 20
    cache = FeatureCache({s: np.zeros((3, channels[s], 224 // s, 224 // s), np.float16) for s in (32, 16, 8, 4)},
                         np.full((3, 1, 56, 56), 50, np.float16), ab, ["clips/g/a/0.jpg", "clips/g/a/2.jpg", "clips/r/b/0.jpg"])
    decoder = AutocolorDecoder(AutocolorConfig(widths=(8, 8, 8, 8))).eval()
    orange = bin_of(30, 60)
    with torch.no_grad():
        decoder.logits.weight.zero_()
        decoder.logits.bias.zero_()
        decoder.logits.bias[orange] = 8.0
    log_weights = np.zeros(Q)
    log_weights[orange] = 4.0
    scores = video_validate(decoder, cache, log_weights, (0.0, 1.0))
    assert scores["rmse_gray"] == pytest.approx(10.0, abs=1e-3)  # mean over the 2 clips: 0 and 20
    assert scores["worst@0.0"] > 20 and scores["chroma_ratio@0.0"] > 2  # the orange cast, on the gray clip
    assert scores["worst@1.0"] < scores["worst@0.0"] and scores["chroma_ratio@1.0"] < scores["chroma_ratio@0.0"]


def test_colorizer_keeps_any_working_size_and_checks_settings(colorizer: AutocolorColorizer) -> None:
    lightness = np.tile(np.linspace(5, 95, 270, dtype=np.float32), (150, 1))
    frame = colorizer.step(lightness, None)
    assert frame.ab.shape == (150, 270, 2) and frame.confidence.shape == (150, 270)
    assert frame.ab.dtype == np.float32 and 0.0 <= frame.confidence.min() <= frame.confidence.max() <= 1.0
    assert colorizer.needs_reference is False
    assert "vibrancy" in colorizer.describe()
    with pytest.raises(InputError, match="vibrancy"):
        AutocolorColorizer(vibrancy=1.5)
    for correction in (-0.1, 2.5):
        with pytest.raises(InputError, match="prior_correction"):
            AutocolorColorizer(prior_correction=correction)
    with pytest.raises(InputError, match="cast_removal"):
        AutocolorColorizer(cast_removal=1.5)
    with pytest.raises(InputError, match="upsample"):
        AutocolorColorizer(upsample="nearest")


def bench_module(name: str) -> object:
    """``bench/NAME.py`` loaded as a module (the bench folder is not a package; its siblings import)."""
    import importlib.util
    import sys

    from helpers import REPO

    sys.path.insert(0, str(REPO / "bench"))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / "bench"))
    return module


def test_bench_decodings_start_from_the_keyframe_decoding_and_add_logit_priors() -> None:
    """bench/autocolor.py's ``autocolor:KEY=VALUE`` methods (autocolor.md, fifth session): no key is the
    decoding no-reference mode uses, keys change its settings, and ``tb``/``n`` add their logit priors."""
    bench = bench_module("autocolor")
    torch.set_num_threads(1)
    shipped = get_colorizer("autocolor", keyframe=True)
    same = bench.automatic("autocolor:")
    assert (same.temperature, same.prior_correction, same.chroma_gain) == (
        shipped.temperature, shipped.prior_correction, shipped.chroma_gain)
    assert torch.equal(same.adjustment, shipped.adjustment)
    changed = bench.automatic("autocolor:T=0.4:a=1:g=1.9")
    assert (changed.temperature, changed.prior_correction, changed.chroma_gain) == (0.4, 1.0, 1.9)
    centres = torch.from_numpy(ab_bins()).float()
    tilted, neutral = bench.automatic("autocolor:tb=0.5"), bench.automatic("autocolor:n=30")
    assert torch.allclose(tilted.adjustment - shipped.adjustment, 0.5 * centres[:, 1] / 10, atol=1e-5)
    assert torch.allclose(neutral.adjustment - shipped.adjustment, (centres ** 2).sum(dim=1) / 1800, atol=1e-5)
    photo = cv2.imread(str(shared_path("photos/kodak24/kodim23.png")))
    lightness = rgb_to_gray_lightness(cv2.resize(cv2.cvtColor(photo, cv2.COLOR_BGR2RGB), (240, 160)).astype(np.float32) / 255)
    plain, cooler, grayer = (c.step(lightness, None).ab for c in (shipped, tilted, neutral))
    assert cooler[..., 1].mean() < plain[..., 1].mean() - 1.0  # the tilt takes yellow out
    assert np.hypot(*grayer.transpose(2, 0, 1)).mean() < np.hypot(*plain.transpose(2, 0, 1)).mean()
    with pytest.raises(SystemExit, match="unknown keys x"):
        bench.automatic("autocolor:x=1")


def test_shot_screen_picks_the_scan_s_keyframe_and_scales_its_chroma_as_measured() -> None:
    """bench/autocolor_shots.py (autocolor.md, sixth session): the keyframe it judges is the one the
    scan would choose, and its error at any chroma scale is the one measured on the scaled colour."""
    bench = bench_module("autocolor_shots")
    torch.set_num_threads(1)
    auto, eccv16 = AutocolorColorizer(keyframe=True), get_colorizer("eccv16")
    photo = cv2.cvtColor(cv2.imread(str(shared_path("photos/kodak24/kodim23.png"))), cv2.COLOR_BGR2RGB)
    frames = [bench.working(photo[:, i * 40: i * 40 + 400]) for i in range(3)]  # a short pan
    item = bench.measure(auto, eccv16, "pan", frames)
    confidences = [float(auto.step(rgb_to_gray_lightness(f), None).confidence.mean()) for f in frames]
    assert item["frame"] == int(np.argmax(confidences)) and item["conf"] == pytest.approx(max(confidences))
    ab = auto.step(rgb_to_gray_lightness(frames[item["frame"]]), None).ab.astype(np.float64)
    truth = rgb_to_lab(frames[item["frame"]])[..., 1:].astype(np.float64)
    for scale in (0.0, 0.5, 1.0, item["s*"]):
        assert bench.rmse_at(item, scale) == pytest.approx(np.sqrt(np.mean((scale * ab - truth) ** 2)), rel=1e-4)
    assert bench.rmse_at(item, 1.0) - bench.rmse_at(item, 0.0) == pytest.approx(item["diff"], abs=1e-4)
    assert bench.rmse_at(item, item["s*"]) <= min(bench.rmse_at(item, s) for s in (0.0, 0.5, 1.0, 1.5))
    assert bench.auc([0.1, 0.2, 0.3, 0.4], [False, False, True, True]) == 1.0
    assert bench.auc([0.4, 0.3, 0.2, 0.1], [False, False, True, True]) == 0.0


def test_shipped_weights_are_small_typed_and_carry_their_temperature(tmp_path: Path) -> None:
    path = shipped_weights_path("autocolor")
    assert path.stat().st_size < 3_000_000
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert payload["format"] == "vidcolor-autocolor-1"
    assert 0.0 < payload["meta"]["vibrancy"] <= 1.0
    def strings(value: object) -> list[str]:
        if isinstance(value, dict):
            return [text for item in value.values() for text in strings(item)]
        if isinstance(value, (list, tuple)):
            return [text for item in value for text in strings(item)]
        return [value] if isinstance(value, str) else []

    absolute = [text for text in strings(payload["meta"]) if Path(text).is_absolute()]
    assert not absolute, f"the weights' metadata names folders of the training machine: {absolute}"
    assert len(payload["meta"]["log_rebalance_weights"]) == Q
    shipped = get_colorizer("autocolor")
    assert shipped.temperature == pytest.approx(payload["meta"]["vibrancy"])
    assert shipped.prior_correction == pytest.approx(payload["meta"]["prior_correction"])
    wrong = tmp_path / "wrong.pt"
    torch.save({"format": "vidcolor-eccv16-1", "state_dict": {}}, wrong)
    with pytest.raises(WeightsMismatchError, match="wrong.pt"):
        AutocolorColorizer(weights=wrong)


@pytest.mark.shared_data
def test_vibrancy_and_prior_correction_set_the_colour_on_a_real_photo() -> None:
    rgb = cv2.cvtColor(cv2.imread(str(shared_path(f"photos/stargan_v2_faces_animals/celeba_hq_src_{FACES[0]}.jpg"))),
                       cv2.COLOR_BGR2RGB)
    lightness = rgb_to_gray_lightness(rgb.astype(np.float32) / 255.0)
    def ab(**options: float) -> np.ndarray:
        return AutocolorColorizer(**options).step(lightness, None).ab

    def chroma(**options: float) -> float:
        out = ab(**options)
        return float(np.hypot(out[..., 0], out[..., 1]).mean())

    # undoing more of the rebalancing takes the rare vivid colours out; beyond 1 the common muted ones win more
    assert (chroma(prior_correction=1.5) < chroma(prior_correction=1.0) < chroma(prior_correction=0.5)
            < chroma(prior_correction=0.0))
    # the temperature moves the colours (mean → mode; not always toward more chroma: a skin-tone
    # mode can be less saturated than a mean pulled by a few vivid bins)
    assert float(np.abs(ab(vibrancy=1.0) - ab(vibrancy=0.05)).mean()) > 1.0
    # cast removal takes that share of the picture's mean colour out of every pixel, nothing else
    plain, half, whole = (ab(prior_correction=1.0, cast_removal=k) for k in (0.0, 0.5, 1.0))
    mean = plain.mean(axis=(0, 1))
    assert float(np.hypot(*mean)) > 3.0  # a face photo is warm on average
    assert np.abs(whole.mean(axis=(0, 1))).max() < 0.05 * float(np.hypot(*mean))
    assert np.allclose(half, plain - 0.5 * mean, atol=0.05 * float(np.hypot(*mean)))


def face_mask(size: int = 256) -> np.ndarray:
    """The face of an aligned CelebA-HQ crop: a central ellipse (on the ten test faces 98-100 % of its
    true pixels are skin-toned, a* > 0 and b* > 0)."""
    yy, xx = np.mgrid[0:size, 0:size]
    return ((xx - size / 2) / (size * 42 / 256)) ** 2 + ((yy - size * 150 / 256) / (size * 55 / 256)) ** 2 <= 1


def skin_share(rgb: np.ndarray) -> float:
    lab = rgb_to_lab(rgb.astype(np.float32) / 255.0)
    mask = face_mask(rgb.shape[0])
    return float(((lab[..., 1] > 0) & (lab[..., 2] > 0))[mask].mean())


@pytest.mark.shared_data
def test_faces_with_no_reference_come_out_skin_toned(tmp_path: Path) -> None:
    """The CLI, no reference, on gray versions of ten face photos it never trained on (one frame
    folder each, as a user colours a still): most face pixels get a* > 0 and b* > 0."""
    shares = {}
    for name in FACES:
        rgb = cv2.imread(str(shared_path(f"photos/stargan_v2_faces_animals/celeba_hq_src_{name}.jpg")))
        gray = cv2.cvtColor(rgb, cv2.COLOR_BGR2GRAY)
        assert skin_share(cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB)) > 0.97  # the region is the face
        folder = tmp_path / name
        folder.mkdir()
        cv2.imwrite(str(folder / "000000.png"), gray)
        out = tmp_path / f"{name}-out"
        result = CliRunner().invoke(main, ["colorize", str(folder), "-o", str(out), "--codec", "png", "--auto-model", "autocolor", "-q"])
        assert result.exit_code == 0, result.output
        colored = cv2.cvtColor(cv2.imread(str(out / "000000.png")), cv2.COLOR_BGR2RGB)
        shares[name] = skin_share(colored)
    assert min(shares.values()) > 0.5, shares
    assert float(np.median(list(shares.values()))) > 0.8, shares


@pytest.mark.shared_data
@pytest.mark.xfail(strict=True, reason="issue 25 Done-when not met by the shipped autocolor.pt (800 iterations, "
                   "keyframes at prior correction 1.25, chroma gain 1.4, the shot's most confident candidate): grass "
                   "comes out yellow (hue 85°, chroma 12.4) and the sky gray (hue 118°, chroma 2.0) (see autocolor.md)")
def test_bigbuckbunny_with_no_reference_has_green_grass_and_blue_sky(tmp_path: Path) -> None:
    """Six frames of bigbuckbunny, gray, through the CLI with no reference: the bottom band (grass)
    is green (mean hue between yellow-green and cyan) and the top-right sky blue."""
    import av

    with av.open(str(shared_path("clips/misc/bigbuckbunny.mp4"))) as container:
        truth = [frame.to_ndarray(format="rgb24") for _, frame in zip(range(6), container.decode(video=0))]
    small = [cv2.resize(f, (640, 360), interpolation=cv2.INTER_AREA) for f in truth]
    gray_clip = write_clip(tmp_path / "bbb.mp4", small, gray=True)
    out = tmp_path / "bbb-out.mkv"
    result = CliRunner().invoke(main, ["colorize", str(gray_clip), "-o", str(out), "--codec", "ffv1", "--auto-model", "autocolor", "-q"])
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 6
    lab = rgb_to_lab(np.mean(frames, axis=0).astype(np.float32) / 255.0)
    h, w = lab.shape[:2]

    def hue(region: np.ndarray) -> tuple[float, float]:
        a, b = float(region[..., 1].mean()), float(region[..., 2].mean())
        return float(np.degrees(np.arctan2(b, a))), float(np.hypot(a, b))

    grass_hue, grass_chroma = hue(lab[-h // 5:])
    sky_hue, sky_chroma = hue(lab[: h // 6, int(0.8 * w):])
    # the truth: grass hue 111°, chroma 55; sky hue -83°, chroma 14
    assert 95.0 < grass_hue < 180.0 and grass_chroma > 10.0, (grass_hue, grass_chroma)
    assert -135.0 < sky_hue < -45.0 and sky_chroma > 4.0, (sky_hue, sky_chroma)
