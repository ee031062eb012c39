"""VCNet architecture and the shipped ``default`` colorizer, on real photos and clip frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from helpers import shared_path
from vidcolor.color import lab_to_rgb, rgb_to_lab
from vidcolor.errors import WeightsMismatchError, WeightsNotFoundError
from vidcolor.models.vcnet import AB_SCALE, SIZE_MULTIPLE, build_vcnet, count_parameters
from vidcolor.references import Reference
from vidcolor.color import luma_lightness


def _photo(relative: str, size: tuple[int, int]) -> np.ndarray:
    rgb = cv2.cvtColor(cv2.imread(str(shared_path(relative)), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _tensors(rgb: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    lab = rgb_to_lab(rgb.astype(np.float32) / 255.0)
    t = torch.from_numpy(lab).permute(2, 0, 1)[None]
    return t[:, :1] / 50.0 - 1.0, t[:, 1:] / AB_SCALE


def test_builder_is_small_and_step_shapes() -> None:
    torch.manual_seed(0)
    model = build_vcnet().eval()
    assert 200_000 < count_parameters(model) < 3_000_000
    l, ab = _tensors(_photo("photos/kodak24/kodim23.png", (96, 64)))
    with torch.no_grad():
        memory = model.reference_memory(l, ab)
        first = model.step(l, memory, None, None)
        second = model.step(l, memory, first.memory, first.ab_full)
    for out in (first, second):
        assert out.ab.shape == (1, 2, 64, 96)
        assert out.confidence.shape == (1, 1, 64, 96)
        assert out.ref_logits is not None and out.ref_logits.shape == (1, 8 * 12, 8 * 12)
        assert torch.isfinite(out.ab).all()


def test_size_not_multiple_of_8_is_refused() -> None:
    model = build_vcnet()
    with pytest.raises(ValueError, match="multiple of 8"):
        model.encode(torch.zeros(1, 1, 60, 96))


def test_attention_finds_identity_correspondence_on_a_real_photo() -> None:
    """Target = reference: centred cosine similarity peaks on the same cell, so colour is copied."""
    torch.manual_seed(0)
    model = build_vcnet(temperature=1e-3).eval()
    l, ab = _tensors(_photo("photos/kodak24/kodim05.png", (128, 96)))
    with torch.no_grad():
        out = model.step(l, model.reference_memory(l, ab), None, None)
        argmax = out.ref_logits[0].argmax(dim=1)
    cells = torch.arange(argmax.numel())
    assert (argmax == cells).float().mean() > 0.9
    coarse_truth = torch.nn.functional.avg_pool2d(ab, 8)
    assert (out.ref_coarse - coarse_truth).abs().mean() * AB_SCALE < 3.0


def test_no_reference_and_no_previous_is_allowed() -> None:
    model = build_vcnet().eval()
    l, _ = _tensors(_photo("photos/kodak24/kodim23.png", (64, 64)))
    with torch.no_grad():
        out = model.step(l, None, None, None)
    assert out.ref_logits is None
    assert torch.isfinite(out.ab).all()


# -- the shipped model ---------------------------------------------------------------------------


def _davis_frames(seq: str, count: int, size: tuple[int, int]) -> list[np.ndarray]:
    folder = shared_path(f"clips/davis/{seq}/JPEGImages")
    files = sorted(folder.glob("*.jpg"))[:count]
    return [cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), size, interpolation=cv2.INTER_AREA) for p in files]


def test_default_colorizer_beats_gray_on_a_held_out_clip() -> None:
    """Weights ship in the package; on held-out DAVIS `dog` they copy the reference's colours."""
    from vidcolor.colorizers.default import DefaultColorizer, default_weights_path

    assert default_weights_path().is_file(), "vidcolor/models/weights/default.pt must ship with the package"
    colorizer = DefaultColorizer()
    frames = _davis_frames("dog", 8, (342, 192))  # 342 is not a multiple of 8: the colorizer pads
    reference = Reference.from_array(frames[0], key="test:dog:0")
    gains = []
    for index, rgb in enumerate(frames):
        small = rgb.astype(np.float32) / 255.0
        lightness = luma_lightness(small)
        result = colorizer.step(lightness, reference)
        assert result.ab.shape == (192, 342, 2) and result.ab.dtype == np.float32
        assert result.confidence.shape == (192, 342)
        assert 0.0 <= result.confidence.min() and result.confidence.max() <= 1.0
        if index:
            out = lab_to_rgb(np.dstack([lightness, result.ab]))
            gray = lab_to_rgb(np.dstack([lightness, np.zeros_like(result.ab)]))
            err_out = np.mean((out - small) ** 2)
            err_gray = np.mean((gray - small) ** 2)
            gains.append(10 * np.log10(err_gray / err_out))
    assert np.mean(gains) > 3.0, f"default model gains only {np.mean(gains):.2f} dB over gray"


def test_default_colorizer_reset_and_no_reference() -> None:
    from vidcolor.colorizers.default import DefaultColorizer

    colorizer = DefaultColorizer()
    frames = _davis_frames("blackswan", 2, (128, 72))
    lightness = luma_lightness(frames[0].astype(np.float32) / 255.0)
    a = colorizer.step(lightness, None)
    assert np.isfinite(a.ab).all()
    colorizer.reset()
    b = colorizer.step(lightness, None)
    np.testing.assert_allclose(a.ab, b.ab, atol=1e-5)  # reset really forgets the previous frame
    c = colorizer.step(lightness, None)  # with a previous frame now: still finite
    assert np.isfinite(c.ab).all()


def test_weights_errors_name_the_file(tmp_path: Path) -> None:
    from vidcolor.colorizers.default import DefaultColorizer

    with pytest.raises(WeightsNotFoundError, match="missing"):
        DefaultColorizer(weights=tmp_path / "nope.pt")
    bogus = tmp_path / "bogus.pt"
    torch.save({"format": "something-else"}, bogus)
    with pytest.raises(WeightsMismatchError, match="bogus.pt"):
        DefaultColorizer(weights=bogus)
    wrong = tmp_path / "wrong.pt"
    small = build_vcnet(channels=(8, 16, 32))
    torch.save({"format": "vidcolor-vcnet-1", "config": build_vcnet().cfg.to_dict(), "state_dict": small.state_dict()}, wrong)
    with pytest.raises(WeightsMismatchError, match="does not fit"):
        DefaultColorizer(weights=wrong)


def test_default_colorizer_larger_working_size_comes_back_at_that_size() -> None:
    """Above its native size the network runs small; the chroma returns at the caller's size."""
    from vidcolor.colorizers.default import DefaultColorizer

    colorizer = DefaultColorizer()
    frames = _davis_frames("dog", 2, (854, 480))
    reference = Reference.from_array(frames[0], key="test:dog:big")
    for rgb in frames:
        result = colorizer.step(luma_lightness(rgb.astype(np.float32) / 255.0), reference)
        assert result.ab.shape == (480, 854, 2) and result.confidence.shape == (480, 854)
    assert colorizer._shape is not None and min(colorizer._shape) == colorizer.native_short_side


def test_size_multiple_constant_matches_colorizer() -> None:
    from vidcolor.colorizers.default import DefaultColorizer

    assert DefaultColorizer.size_multiple == SIZE_MULTIPLE
    assert DefaultColorizer.name == "default"


def test_flow_candidate_trusts_only_consistent_flow() -> None:
    """Zero motion on identical frames: full trust; a lightness mismatch or occlusion removes it."""
    from vidcolor.models.vcnet import flow_candidate

    l, ab = _tensors(_photo("photos/kodak24/kodim23.png", (64, 48)))
    zero = torch.zeros(1, 2, 48, 64)
    visible = torch.ones(1, 1, 48, 64)
    visible[..., :10] = 0
    pulled, conf = flow_candidate(ab, l, l, zero, visible)
    torch.testing.assert_close(pulled, ab)
    assert conf[..., 10:].min() > 0.99 and conf[..., :10].max() == 0
    _, conf_dark = flow_candidate(ab, l, l - 0.4, zero, visible)  # 20 L units darker: not the same surface
    assert conf_dark.max() < 0.01


def test_default_colorizer_reference_flow_preset_follows_the_network_size() -> None:
    """Medium DIS for the reference flow once the network runs at 240 lines or more (quality sizes),
    fast below (the CLI's speed-bound default 160); explicit choices win; bad ones are refused."""
    import pickle

    from vidcolor.colorizers.default import DefaultColorizer
    from vidcolor.errors import InputError

    colorizer = DefaultColorizer()
    assert colorizer.reference_flow_for(160) == "fast" and colorizer.reference_flow_for(256) == "medium"
    assert DefaultColorizer(reference_flow_preset="fast").reference_flow_for(360) == "fast"
    with pytest.raises(InputError, match="not an OpenCV DIS preset"):
        DefaultColorizer(reference_flow_preset="slowest")
    with pytest.raises(InputError, match="previous_flow_preset"):
        DefaultColorizer(previous_flow_preset="")
    # the presets really reach the flow: at 256 lines, medium and fast give different colours
    frames = [np.roll(_pattern(456, 256), 6 * i, axis=1) for i in range(3)]
    reference = Reference.from_array(frames[0], key="test:pattern:0")
    outputs = {}
    for preset in ("fast", "medium"):
        model = pickle.loads(pickle.dumps(DefaultColorizer(reference_flow_preset=preset)))  # survives pickling
        for rgb in frames:
            result = model.step(luma_lightness(rgb.astype(np.float32) / 255.0), reference)
        outputs[preset] = result.ab
    assert np.abs(outputs["fast"] - outputs["medium"]).mean() > 1e-3


def _pattern(width: int, height: int) -> np.ndarray:
    """Colour blobs on a textured ground: something DIS can track and the network can colour."""
    rng = np.random.default_rng(7)
    base = cv2.resize(rng.uniform(0, 255, (height // 8, width // 8, 3)).astype(np.float32), (width, height),
                      interpolation=cv2.INTER_CUBIC)
    texture = rng.normal(0, 12, (height, width, 1)).astype(np.float32)
    return np.clip(base + texture, 0, 255).astype(np.uint8)


def test_default_colorizer_reference_flow_follows_motion_far_from_the_reference() -> None:
    """A pan that takes the frame 55 px from its reference (more than DIS finds from zero at 160
    lines): starting each frame's flow to the reference from the previous frame's finds it, and
    the colours with it, and so does keeping the previous frame's as a candidate; a new reference
    starts afresh."""
    from vidcolor.colorizers.default import DefaultColorizer

    ground = _pattern(400, 160)
    frames = [np.ascontiguousarray(ground[:, 100 - 5 * i: 388 - 5 * i]) for i in range(12)]
    truth = rgb_to_lab(frames[-1].astype(np.float32) / 255.0)[..., 1:]
    reference = Reference.from_array(frames[0], key="test:pan:0")
    errors, shifts = {}, {}
    # nothing carried; DIS starts from the carried flow; it stays a candidate; both (the default)
    for carry in ("none", "warm", "track", "both"):
        colorizer = DefaultColorizer(warm_reference_flow=carry in ("warm", "both"),
                                     track_reference_flow=carry in ("track", "both"))
        for rgb in frames:
            result = colorizer.step(luma_lightness(rgb.astype(np.float32) / 255.0), reference)
        errors[carry] = float(np.abs(result.ab - truth)[:, 60:].mean())  # columns the reference shows
        key, flow = colorizer._reference_flow
        assert key == "test:pan:0"
        shifts[carry] = float(np.median(flow.forward[:, 80:, 0]))
    assert abs(shifts["none"] + 55) > 10
    assert all(abs(shifts[carry] + 55) < 1.0 for carry in ("warm", "track", "both"))
    # measured: none 7.9, warm 1.5, track 4.7 (DIS's wrong flow still wins where it matches as well), both 1.5
    assert errors["warm"] < 0.5 * errors["none"] and errors["both"] < 0.5 * errors["none"]
    assert errors["track"] < 0.75 * errors["none"]
    # another reference: nothing is carried over from the first one's flows
    other = Reference.from_array(frames[-1], key="test:pan:11")
    colorizer.step(luma_lightness(frames[-1].astype(np.float32) / 255.0), other)
    key, flow = colorizer._reference_flow
    assert key == "test:pan:11" and abs(float(np.median(flow.forward[:, 80:, 0]))) < 1.0
    colorizer.reset()
    assert colorizer._reference_flow is None


def test_default_colorizer_reference_flow_locks_on_while_nearing_the_reference() -> None:
    """The other way: a shot that ends on its keyframe starts 55 px from it, too far for DIS from
    zero. The pan's global shift (phase correlation) is the start, so the flow is right from the
    first frame; from zero it is wrong there."""
    from vidcolor.colorizers.default import DefaultColorizer

    ground = _pattern(400, 160)
    shifts = [5 * (11 - i) for i in range(12)]
    frames = [np.ascontiguousarray(ground[:, 100 - shift: 388 - shift]) for shift in shifts]
    reference = Reference.from_array(frames[-1], key="test:nearing")
    errors: dict[bool, list[float]] = {}
    for warm in (True, False):
        colorizer = DefaultColorizer(warm_reference_flow=warm)
        errors[warm] = []
        for rgb, shift in zip(frames, shifts):
            colorizer.step(luma_lightness(rgb.astype(np.float32) / 255.0), reference)
            errors[warm].append(abs(float(np.median(colorizer._reference_flow[1].forward[:, 80:, 0])) + shift))
    assert max(errors[True]) < 1.0, errors[True]
    assert max(errors[False][:4]) > 10


def test_default_colorizer_carries_the_reference_flow_only_where_it_held() -> None:
    """A carried flow that failed the forward-backward check is not a start: the flow is then what
    it would have been with nothing carried (so a region wrong far from the keyframe can lock on
    as it nears); where it held, it is the start."""
    from vidcolor.colorizers.default import DefaultColorizer
    from vidcolor.correspondence.tracking import Flow

    ground = _pattern(400, 160)
    frame, previous, reference = (luma_lightness(np.ascontiguousarray(ground[:, x: x + 288]).astype(np.float32) / 255.0)
                                  for x in (60, 64, 100))
    grays = [np.clip(image * 2.55 + 0.5, 0, 255).astype(np.uint8) for image in (frame, previous, reference)]
    colorizer = DefaultColorizer()
    dis = colorizer._dis["fast"]
    wrong = np.zeros((160, 288, 2), np.float32)
    wrong[..., 1] = 30.0  # 30 px down: nothing like the true motion
    nothing_carried = colorizer._estimate_flows(grays[0], grays[1], grays[2], dis, None)[1]
    failed = Flow(wrong, -wrong, np.zeros((160, 288), bool))
    assert np.array_equal(colorizer._estimate_flows(grays[0], grays[1], grays[2], dis, failed)[1].forward,
                          nothing_carried.forward)
    held = Flow(wrong, -wrong, np.ones((160, 288), bool))
    assert not np.array_equal(colorizer._estimate_flows(grays[0], grays[1], grays[2], dis, held)[1].forward,
                              nothing_carried.forward)


def test_default_colorizer_keeps_the_tracked_reference_flow_where_it_matches_better() -> None:
    """Far from its keyframe DIS can hold on to a look-alike: pixel by pixel, the reference flow is
    the tracked one where only it held or where the reference it points to matches the frame
    better, DIS's elsewhere; and it counts as held where either did."""
    from vidcolor.correspondence.tracking import Flow, Tracked, better_matching

    ground = cv2.cvtColor(_pattern(400, 160), cv2.COLOR_RGB2GRAY)
    reference, frame = ground[:, 100:388], ground[:, 92:380]  # the frame is the reference moved 8 px right
    true = np.zeros((160, 288, 2), np.float32)
    true[..., 0] = -8.0
    measured = true.copy()
    measured[:, 144:, 1] = 6.0  # right half: 6 px off, yet DIS's own check passed
    visible = np.ones((160, 288), bool)
    tracked_visible = np.zeros((160, 288), bool)
    tracked_visible[:, 40:] = True  # tracking lost the left edge
    measured_visible = visible.copy()
    measured_visible[:, 200:240] = False  # DIS's check failed there
    tracked = Tracked(true + 0.25, tracked_visible, tracked_visible)
    chosen = better_matching(Flow(measured, -measured, measured_visible), tracked, frame, reference)
    assert np.array_equal(chosen.forward[:, :40], measured[:, :40])  # tracking lost: DIS's, right or not
    right = chosen.forward[20:-20, 160:270]
    assert np.abs(right - true[20:-20, 160:270]).max() < 0.5  # DIS's was 6 px off: tracked
    assert np.abs(chosen.forward[:, 200:240] - true[:, 200:240]).max() < 0.5  # only tracking held
    assert chosen.visible.all()
    # a tracked flow that is the wrong one is not taken where DIS's matches
    wrong = Tracked(true + np.float32([0.0, 6.0]), visible, visible)
    kept = better_matching(Flow(true, -true, visible), wrong, frame, reference)
    assert np.mean(np.abs(kept.forward - true).max(axis=2) < 0.5) > 0.95


def test_default_colorizer_follows_a_reference_brighter_than_the_shot() -> None:
    """A keyframe rarely has the shot's exact exposure (the light moves on; a colorist grades the
    still): the flow-warped reference stays trusted through a lightness difference of a few L units,
    which the previous-frame candidate (the training's tolerance, 4) would not forgive; a bad
    tolerance is refused."""
    from vidcolor.colorizers.default import DefaultColorizer
    from vidcolor.errors import InputError

    ground = _pattern(400, 160)
    frames = [np.ascontiguousarray(ground[:, 100 - 4 * i: 388 - 4 * i]) for i in range(6)]
    lab = rgb_to_lab(frames[0].astype(np.float32) / 255.0)
    lab[..., 0] = np.clip(lab[..., 0] + 6.0, 0, 100)  # the keyframe 6 L units brighter, same colours
    reference = Reference.from_array(np.clip(lab_to_rgb(lab) * 255 + 0.5, 0, 255).astype(np.uint8), key="test:bright")
    truth = rgb_to_lab(frames[-1].astype(np.float32) / 255.0)[..., 1:]
    errors, confidence = {}, {}
    for tolerance in (4.0, None):
        colorizer = DefaultColorizer(reference_flow_tolerance=tolerance)
        for rgb in frames:
            result = colorizer.step(luma_lightness(rgb.astype(np.float32) / 255.0), reference)
        errors[tolerance] = float(np.abs(result.ab - truth)[:, 40:].mean())  # columns the reference shows
        confidence[tolerance] = float(result.confidence[:, 40:].mean())  # the share copied from the reference
    # measured: ab error 9.7 with 4, 8.9 with the default; confidence 0.06 and 0.23
    assert DefaultColorizer.reference_flow_tolerance > 4.0
    assert errors[None] < 0.95 * errors[4.0] and confidence[None] > 2.0 * confidence[4.0]
    with pytest.raises(InputError, match="reference_flow_tolerance"):
        DefaultColorizer(reference_flow_tolerance=0)


def test_default_colorizer_after_reset_answers_as_a_new_one() -> None:
    """Chunk replays (VapourSynth, resumed runs) rely on reset() leaving nothing behind, OpenCV's
    flow objects included: a used colorizer, once reset, gives a new one's output bit for bit."""
    from vidcolor.colorizers.default import DefaultColorizer

    ground = _pattern(400, 160)
    frames = [np.ascontiguousarray(ground[:, 100 - 5 * i: 388 - 5 * i]) for i in range(5)]
    lightness = [luma_lightness(rgb.astype(np.float32) / 255.0) for rgb in frames]
    reference = Reference.from_array(frames[0], key="test:pan:0")
    used = DefaultColorizer()
    for frame in lightness[::-1]:
        used.step(frame, reference)
    used.reset()
    new = DefaultColorizer()
    for frame in lightness:
        assert np.array_equal(used.step(frame, reference).ab, new.step(frame, reference).ab)


def test_default_colorizer_confidence_says_where_the_reference_reaches() -> None:
    """The confidence is the share of colour copied from the reference at that very pixel, so a
    shot's two keyframes each colour what they show: the frame's left strip is seen only by the end
    keyframe, its right strip only by the start one, and the blend takes each strip from the side
    that sees it (equal confidence everywhere would mix in the other side's guess half and half)."""
    from vidcolor.colorizers.default import DefaultColorizer
    from vidcolor.run.pipeline import blend_predictions

    ground = _pattern(400, 160)
    frame = np.ascontiguousarray(ground[:, 56:344])
    lightness = luma_lightness(frame.astype(np.float32) / 255.0)
    truth = rgb_to_lab(frame.astype(np.float32) / 255.0)[..., 1:]
    start, end = (DefaultColorizer().step(lightness, Reference.from_array(np.ascontiguousarray(ground[:, x: x + 288]), key=name))
                  for name, x in (("start", 96), ("end", 16)))
    left, right, middle = np.s_[:, :32], np.s_[:, 256:], np.s_[:, 100:190]
    for seen, unseen, result in ((right, left, start), (left, right, end)):
        assert result.confidence[unseen].mean() < 0.5 * result.confidence[middle].mean()
        assert result.confidence[seen].mean() > 0.2
    blended = blend_predictions(start, end, 0.5)
    for strip, better in ((left, end), (right, start)):
        best = float(np.abs(better.ab - truth)[strip].mean())
        assert float(np.abs(blended.ab - truth)[strip].mean()) < 1.5 * best + 1.0


def test_default_colorizer_support_says_where_colour_was_copied() -> None:
    """``support`` tells a fallback model where the exemplar model had colour to copy: high where the
    reference shows the frame, zero on a first frame with nothing to copy from; it comes back at the
    working size when the network runs smaller."""
    from vidcolor.colorizers.default import DefaultColorizer

    frame = _pattern(288, 160)
    lightness = luma_lightness(frame.astype(np.float32) / 255.0)
    colorizer = DefaultColorizer()
    copied = colorizer.step(lightness, Reference.from_array(frame, key="self"))
    assert copied.support is not None and copied.support.shape == lightness.shape
    assert copied.support.dtype == np.float32 and 0.0 <= copied.support.min() and copied.support.max() <= 1.0
    assert float(copied.support.mean()) > 0.8
    colorizer.reset()
    nothing = colorizer.step(lightness, None)
    assert nothing.support is not None and float(nothing.support.max()) == 0.0
    big = cv2.resize(lightness, (576, 320), interpolation=cv2.INTER_LINEAR)
    shrunk = DefaultColorizer(native_short_side=160).step(big, Reference.from_array(frame, key="self"))
    assert shrunk.support is not None and shrunk.support.shape == big.shape
    assert float(shrunk.support.mean()) > 0.8
