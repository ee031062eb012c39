"""Quality and temporal-consistency metrics for colorized video.

Images are RGB ``(H, W, 3)``: uint8 code values, or floats in [0, 1]. Every metric converts to
floats in [0, 1] first, except the two defined on 8-bit code values (CDC's 256-bin histograms and
Hasler & Süsstrunk's colourfulness, whose constants assume 0..255).

Temporal metrics take the motion between consecutive frames as an argument, computed once by
:func:`source_motion` from the gray *source* frames. Lai et al. (2018) compute flow on the
original (input) video; for colorization that input is the gray video, which the output and the
ground truth share exactly (same luma), so one set of flows and occlusion masks serves both and
:func:`warp_ratio` compares like with like: output flicker over the ground truth's own flicker.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ..color import rgb_to_lab, to_unit_rgb
from ..errors import InputError
from ..correspondence.flow import FlowEstimator, FlowPair, forward_backward, warp

#: Frame distances whose histogram divergences CDC averages (Lei et al.; TCVC's evaluation).
CDC_DILATIONS = (1, 2, 4)


def to_u8_rgb(image: np.ndarray) -> np.ndarray:
    """RGB floats in [0, 1] or 16-bit codes → 8-bit code values (rounded)."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return np.rint(image / 257.0).astype(np.uint8)
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def _check_same_shape(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape:
        raise InputError(f"{what}: frames differ in shape, {a.shape} vs {b.shape}: compare frames of one size")


def psnr(output: np.ndarray, truth: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB on RGB in [0, 1] (``inf`` for identical images)."""
    _check_same_shape(output, truth, "psnr")
    a = to_unit_rgb(output).astype(np.float64)
    b = to_unit_rgb(truth).astype(np.float64)
    if np.array_equal(a, b):
        return float("inf")
    return float(peak_signal_noise_ratio(b, a, data_range=1.0))


def ssim(output: np.ndarray, truth: np.ndarray) -> float:
    """Structural similarity (scikit-image defaults: 7x7 window), averaged over R, G, B."""
    _check_same_shape(output, truth, "ssim")
    a = to_unit_rgb(output).astype(np.float64)
    b = to_unit_rgb(truth).astype(np.float64)
    return float(structural_similarity(b, a, data_range=1.0, channel_axis=-1 if a.ndim == 3 else None))


def source_motion(gray_frames: Sequence[np.ndarray], estimator: FlowEstimator) -> list[FlowPair]:
    """Flows and visibility for every consecutive pair: entry ``t-1`` describes frames (t-1, t).

    ``gray_frames`` are the gray source frames in [0, 1] (or uint8); the forward flow goes from
    frame t-1 to frame t and the visibility mask lives on frame t-1's grid, as in Lai et al.
    """
    grays = [_to_gray_unit(g) for g in gray_frames]
    return [forward_backward(estimator, grays[t - 1], grays[t]) for t in range(1, len(grays))]


def _to_gray_unit(gray: np.ndarray) -> np.ndarray:
    if gray.ndim != 2:
        raise InputError(f"motion is estimated on gray frames (H, W), got shape {gray.shape}")
    if gray.dtype == np.uint8:
        return gray.astype(np.float32) / 255.0
    return np.asarray(gray, dtype=np.float32)


def pair_warp_error(previous: np.ndarray, current: np.ndarray, motion: FlowPair) -> float:
    """Lai et al.'s warp error of one pair: frame t warped back onto frame t-1, occlusions masked.

    ``mean over visible pixels and channels of (warp(current, flow_{t-1→t}) - previous)²`` on RGB in
    [0, 1]; 0 when nothing is visible (their convention).
    """
    _check_same_shape(previous, current, "warp error")
    if motion.forward.shape[:2] != previous.shape[:2]:
        raise InputError(
            f"warp error: flow is {motion.forward.shape[1]}x{motion.forward.shape[0]} but frames are "
            f"{previous.shape[1]}x{previous.shape[0]}: estimate motion at the frames' size"
        )
    prev = to_unit_rgb(previous)
    warped = warp(to_unit_rgb(current), motion.forward)
    visible = motion.visible
    count = int(visible.sum())
    if count == 0:
        return 0.0
    diff = (warped - prev)[visible]
    return float(np.mean(diff.astype(np.float64) ** 2))


def pair_chroma_warp_error(previous: np.ndarray, current: np.ndarray, motion: FlowPair) -> float:
    """Colour-only flicker of one pair: like :func:`pair_warp_error` on Lab ``a, b`` (Lab units²).

    Zhang et al. (2019) measure flicker on chroma (their Eq. 13). A colorizer keeps the source's
    luma, so RGB warp error also carries the source's own luma changes, the same for every method;
    this isolates what the colorizer adds.
    """
    _check_same_shape(previous, current, "chroma warp error")
    visible = motion.visible
    if not visible.any():
        return 0.0
    prev_ab = rgb_to_lab(to_unit_rgb(previous))[..., 1:]
    warped_ab = warp(rgb_to_lab(to_unit_rgb(current))[..., 1:], motion.forward)
    diff = (warped_ab - prev_ab)[visible]
    return float(np.mean(diff.astype(np.float64) ** 2))


def chroma_warp_error(frames: Sequence[np.ndarray], motion: Sequence[FlowPair]) -> float:
    """Mean :func:`pair_chroma_warp_error` over consecutive pairs (0 for fewer than two frames)."""
    _check_motion(frames, motion)
    errors = [pair_chroma_warp_error(frames[t - 1], frames[t], motion[t - 1]) for t in range(1, len(frames))]
    return float(np.mean(errors)) if errors else 0.0


def _check_motion(frames: Sequence[np.ndarray], motion: Sequence[FlowPair]) -> None:
    if len(motion) != len(frames) - 1:
        raise InputError(
            f"warp error: {len(frames)} frames need {len(frames) - 1} motion pairs, got {len(motion)}: "
            "estimate motion on the same frames"
        )


def warp_errors(frames: Sequence[np.ndarray], motion: Sequence[FlowPair]) -> np.ndarray:
    """Per-pair warp errors: entry ``t-1`` is the error between frames t-1 and t."""
    _check_motion(frames, motion)
    return np.array([pair_warp_error(frames[t - 1], frames[t], motion[t - 1]) for t in range(1, len(frames))])


def warp_error(frames: Sequence[np.ndarray], motion: Sequence[FlowPair]) -> float:
    """Mean warp error over all consecutive pairs (0 for fewer than two frames)."""
    errors = warp_errors(frames, motion)
    return float(errors.mean()) if errors.size else 0.0


def warp_ratio(frames: Sequence[np.ndarray], truth: Sequence[np.ndarray], motion: Sequence[FlowPair]) -> float:
    """Output warp error over the ground truth's, both measured with the same source motion.

    1.0 means exactly as temporally stable as the real colours; above 1 is extra flicker.
    """
    reference = warp_error(truth, motion)
    value = warp_error(frames, motion)
    if reference <= 0.0:
        return float("inf") if value > 0.0 else 1.0
    return value / reference


def color_histogram(image: np.ndarray) -> np.ndarray:
    """Per-channel histograms of 8-bit code values: float64 ``(3, 256)``, each row summing to 1.

    Bin ``k`` counts code value ``k`` exactly (range [0, 256), like ``cv2.calcHist``); float
    images in [0, 1] are rounded to codes first.
    """
    codes = to_u8_rgb(image)
    if codes.ndim != 3 or codes.shape[2] != 3:
        raise InputError(f"colour histogram needs an RGB image (H, W, 3), got shape {codes.shape}")
    flat = codes.reshape(-1, 3)
    hist = np.stack([np.bincount(flat[:, c], minlength=256) for c in range(3)]).astype(np.float64)
    return hist / flat.shape[0]


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence (natural log) of two distributions along the last axis, summed."""
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0)
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0)
    return float(0.5 * kl_p.sum() + 0.5 * kl_q.sum())


def cdc_from_histograms(histograms: Sequence[np.ndarray], dilations: Sequence[int] = CDC_DILATIONS) -> float:
    """Colour distribution consistency from per-frame :func:`color_histogram` outputs.

    For each dilation d, the JS divergence of each channel's histogram between frames i and i+d,
    averaged over i and channels; then averaged over the dilations (equal weights). Dilations
    longer than the clip are skipped; fewer than two frames give 0.
    """
    per_dilation = []
    for d in dilations:
        if d < 1:
            raise InputError(f"CDC dilation must be a positive frame distance, got {d}")
        if len(histograms) <= d:
            continue
        values = [
            np.mean([js_divergence(histograms[i][c], histograms[i + d][c]) for c in range(3)])
            for i in range(len(histograms) - d)
        ]
        per_dilation.append(float(np.mean(values)))
    return float(np.mean(per_dilation)) if per_dilation else 0.0


def cdc(frames: Sequence[np.ndarray], dilations: Sequence[int] = CDC_DILATIONS) -> float:
    """Colour distribution consistency (Lei et al.): lower is more stable colour over time."""
    return cdc_from_histograms([color_histogram(f) for f in frames], dilations)


def colorfulness(image: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness on 8-bit RGB scale.

    ``sqrt(σ_rg² + σ_yb²) + 0.3·sqrt(μ_rg² + μ_yb²)`` with ``rg = R − G`` and ``yb = (R + G)/2 − B``.
    """
    rgb = to_unit_rgb(image).astype(np.float64) * 255.0
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputError(f"colourfulness needs an RGB image (H, W, 3), got shape {rgb.shape}")
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
