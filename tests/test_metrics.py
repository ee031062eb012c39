"""Metrics against small hand-computed cases, including frame alignment and histogram ranges."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vidcolor.report import metrics
from vidcolor.errors import InputError
from vidcolor.correspondence.flow import DISFlow, FlowPair

LN2 = math.log(2.0)


def constant(value: float | tuple[float, float, float], height: int = 8, width: int = 8) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, np.float32), (height, width, 3)).copy()


def codes(value: int | tuple[int, int, int], height: int = 8, width: int = 8) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, np.uint8), (height, width, 3)).copy()


def still(height: int, width: int, visible: np.ndarray | None = None) -> FlowPair:
    zero = np.zeros((height, width, 2), np.float32)
    mask = np.ones((height, width), bool) if visible is None else visible
    return FlowPair(zero, zero, mask)


# -- PSNR / SSIM -------------------------------------------------------------------------------

def test_psnr_hand_computed() -> None:
    # MSE 0.01 on [0, 1] → 10·log10(1 / 0.01) = 20 dB.
    assert metrics.psnr(constant(0.1), constant(0.0)) == pytest.approx(20.0, abs=1e-4)
    # 8-bit: 51/255 = 0.2 → MSE 0.04 → 13.979 dB.
    assert metrics.psnr(codes(51), codes(0)) == pytest.approx(10 * math.log10(1 / 0.04), abs=1e-4)
    assert metrics.psnr(codes(7), codes(7)) == math.inf


def test_ssim_hand_computed_for_constant_images() -> None:
    # Constant images: zero variances, so SSIM = (2ab + C1) / (a² + b² + C1), C1 = (0.01·1)².
    c1 = 1e-4
    expected = (2 * 0.5 * 0.25 + c1) / (0.5**2 + 0.25**2 + c1)
    assert metrics.ssim(constant(0.5, 16, 16), constant(0.25, 16, 16)) == pytest.approx(expected, abs=1e-6)
    rng = np.random.default_rng(0)
    image = rng.random((32, 32, 3)).astype(np.float32)
    assert metrics.ssim(image, image) == pytest.approx(1.0)
    with pytest.raises(InputError, match="differ in shape"):
        metrics.ssim(image, image[:16])


# -- warp error --------------------------------------------------------------------------------

def test_pair_warp_error_hand_computed_and_masked() -> None:
    # (0.5 - 0.2)² = 0.09 on every visible pixel and channel.
    assert metrics.pair_warp_error(constant(0.2), constant(0.5), still(8, 8)) == pytest.approx(0.09)
    previous = constant(0.0)
    current = constant(0.5)
    current[:, 4:] = 0.1
    left = np.zeros((8, 8), bool)
    left[:, :4] = True
    # Only the visible left half counts: 0.5² = 0.25 (the right half's 0.01 is masked out).
    assert metrics.pair_warp_error(previous, current, still(8, 8, left)) == pytest.approx(0.25)
    assert metrics.pair_warp_error(previous, current, still(8, 8, np.zeros((8, 8), bool))) == 0.0


def test_chroma_warp_error_ignores_luma_changes() -> None:
    # A gray frame getting brighter: large RGB warp error, no chroma change at all.
    assert metrics.pair_warp_error(constant(0.2), constant(0.5), still(8, 8)) > 0.05
    assert metrics.pair_chroma_warp_error(constant(0.2), constant(0.5), still(8, 8)) < 0.01  # OpenCV gray: |ab| < 0.1
    from vidcolor.color import rgb_to_lab

    red, green = constant((0.6, 0.2, 0.2)), constant((0.2, 0.6, 0.2))
    expected = float(np.sum((rgb_to_lab(green)[0, 0, 1:] - rgb_to_lab(red)[0, 0, 1:]) ** 2) / 2)
    assert metrics.pair_chroma_warp_error(red, green, still(8, 8)) == pytest.approx(expected, rel=1e-5)
    assert metrics.chroma_warp_error([red, green, green], [still(8, 8)] * 2) == pytest.approx(expected / 2, rel=1e-5)


def moving_frames(offsets: list[int], height: int = 24, width: int = 40) -> list[np.ndarray]:
    """Frame t shows a wide texture from column offsets[t]: frame_t[x] = big[x + offsets[t]]."""
    rng = np.random.default_rng(5)
    big = rng.random((height, width + max(offsets) + 1, 3)).astype(np.float32)
    return [np.ascontiguousarray(big[:, o : o + width]) for o in offsets]


def oracle_motion(offsets: list[int], height: int = 24, width: int = 40) -> list[FlowPair]:
    """Exact flow t-1 → t: frame_{t-1}[x] = frame_t[x + offsets[t-1] - offsets[t]]."""
    pairs = []
    for t in range(1, len(offsets)):
        dx = offsets[t - 1] - offsets[t]
        forward = np.zeros((height, width, 2), np.float32)
        forward[..., 0] = dx
        target = np.arange(width) + dx
        visible = np.broadcast_to((target >= 0) & (target <= width - 1), (height, width)).copy()
        pairs.append(FlowPair(forward, -forward, visible))
    return pairs


def test_warp_error_pairs_frame_t_with_motion_t_minus_1() -> None:
    offsets = [0, 3, 10, 12]  # different motion per pair, so any misalignment shows
    frames = moving_frames(offsets)
    motion = oracle_motion(offsets)
    assert np.allclose(metrics.warp_errors(frames, motion), 0.0, atol=1e-12)
    shifted = motion[1:] + motion[:1]  # motion one pair off
    assert (metrics.warp_errors(frames, shifted) > 1e-3).all()
    with pytest.raises(InputError, match="need 3 motion pairs"):
        metrics.warp_errors(frames, motion[:2])


def test_source_motion_direction_and_alignment_with_real_flow() -> None:
    offsets = [0, 2, 6]
    frames = moving_frames(offsets, 64, 96)
    grays = [f.mean(axis=-1) for f in frames]
    import cv2

    grays = [cv2.GaussianBlur(g, (0, 0), 1.0) for g in grays]
    motion = metrics.source_motion(grays, DISFlow())
    assert len(motion) == 2
    assert np.median(motion[0].forward[8:-8, 8:-8, 0]) == pytest.approx(-2.0, abs=0.5)
    assert np.median(motion[1].forward[8:-8, 8:-8, 0]) == pytest.approx(-4.0, abs=0.5)


def test_warp_ratio_is_one_for_the_truth_and_above_for_flicker() -> None:
    offsets = [0, 1, 2, 3, 4]
    truth = [f * 0.5 for f in moving_frames(offsets)]
    motion = oracle_motion(offsets)
    assert metrics.warp_ratio(truth, truth, motion) == pytest.approx(1.0)
    # Truth stands still here, so any output change is pure flicker: ratio is infinite.
    still_truth = [constant(0.5, 24, 40)] * 5
    flicker = [constant(0.5 + 0.1 * (t % 2), 24, 40) for t in range(5)]
    motion0 = [still(24, 40)] * 4
    assert metrics.warp_error(flicker, motion0) == pytest.approx(0.01)
    assert metrics.warp_ratio(flicker, still_truth, motion0) == math.inf
    noisy_truth = [f + np.float32(0.02 * (t % 2)) for t, f in enumerate(truth)]
    assert metrics.warp_ratio(noisy_truth, truth, motion) > 1.0


# -- CDC ---------------------------------------------------------------------------------------

def test_histogram_bins_are_code_values() -> None:
    hist = metrics.color_histogram(codes((0, 128, 255)))
    assert hist.shape == (3, 256)
    assert hist[0, 0] == 1.0 and hist[1, 128] == 1.0 and hist[2, 255] == 1.0
    # Floats in [0, 1] use the same bins: 0.2 → code 51.
    assert metrics.color_histogram(constant(0.2))[0, 51] == 1.0


def test_js_divergence_hand_computed() -> None:
    p = np.array([0.5, 0.5])
    q = np.array([1.0, 0.0])
    # m = (0.75, 0.25): ½[½ln(.5/.75) + ½ln(.5/.25)] + ½[ln(1/.75)]
    expected = 0.5 * (0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)) + 0.5 * math.log(1 / 0.75)
    assert metrics.js_divergence(p, q) == pytest.approx(expected)
    assert metrics.js_divergence(q, q) == 0.0
    assert metrics.js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(LN2)


def test_cdc_histogram_range() -> None:
    # Neighbouring code values are different bins: disjoint histograms → ln 2 per pair.
    assert metrics.cdc([codes(254), codes(255)]) == pytest.approx(LN2)
    assert metrics.cdc([codes(0), codes(1)]) == pytest.approx(LN2)
    # Floats in [0, 1] are not binned as if they were 0..255 codes (which would put both in bin 0).
    assert metrics.cdc([constant(0.2), constant(0.6)]) == pytest.approx(LN2)
    # Only the red channel changes: one of three channels diverges.
    assert metrics.cdc([codes((10, 20, 30)), codes((90, 20, 30))]) == pytest.approx(LN2 / 3)


def test_cdc_dilations_1_2_4_are_frame_distances() -> None:
    a, b = codes(50), codes(200)
    alternating = [a, b, a, b, a, b]
    # d=1: every pair differs (ln 2); d=2 and d=4: same frames (0). Mean over dilations: ln2 / 3.
    assert metrics.cdc(alternating) == pytest.approx(LN2 / 3)
    pairs = [a, a, b, b, a, a, b, b]
    # d=1: 3 of 7 pairs differ; d=2: all 6 differ; d=4: none of 4 differ.
    assert metrics.cdc(pairs) == pytest.approx((3 / 7 * LN2 + LN2 + 0.0) / 3)
    half = codes(50)
    half[:, 4:] = 200
    # Partial overlap (½, ½) vs (1, 0) over two frames: d=1 only.
    expected = 0.5 * (0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)) + 0.5 * math.log(1 / 0.75)
    assert metrics.cdc([half, a]) == pytest.approx(expected)
    assert metrics.cdc([a]) == 0.0


# -- colourfulness -----------------------------------------------------------------------------

def test_colorfulness_hand_computed() -> None:
    # Pure red: rg = 255, yb = 127.5, no spread → 0.3·sqrt(255² + 127.5²).
    assert metrics.colorfulness(codes((255, 0, 0))) == pytest.approx(0.3 * math.hypot(255, 127.5), rel=1e-6)
    assert metrics.colorfulness(codes(128)) == pytest.approx(0.0)
    # Half red, half green: rg = ±255 (σ 255, μ 0); yb = 127.5 everywhere → 255 + 0.3·127.5.
    image = codes((255, 0, 0))
    image[:, 4:] = (0, 255, 0)
    assert metrics.colorfulness(image) == pytest.approx(255 + 0.3 * 127.5, rel=1e-6)
    # Floats in [0, 1] are on the same 0..255 scale.
    assert metrics.colorfulness(constant((1.0, 0.0, 0.0))) == pytest.approx(0.3 * math.hypot(255, 127.5), rel=1e-6)
