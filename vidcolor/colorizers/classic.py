"""The weight-free baseline: reference colours carried frame to frame by optical flow.

For each frame, three colour sources are blended by their reliability:

1. the previous output warped by DIS flow (temporal stability), trusted where the flow is
   forward–backward consistent and the warped lightness matches;
2. the reference warped onto the frame by flow (re-anchoring, so errors do not drift), trusted
   by the same tests;
3. a global luminance/texture lookup from the reference (Welsh et al. 2002), used where both
   flows fail (new content, occlusions, a reference from another angle).

A luma-guided filter then snaps the blended chroma to the frame's edges. No weights, no torch: it
is the honest end-to-end baseline every learned model is measured against.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..correspondence.flow import DISFlow, visible_mask, warp
from ..references import Reference
from .base import ColorizedFrame, Colorizer

_L_BINS = 48
_TEXTURE_BINS = 6


@dataclass
class _ReferenceState:
    lightness: np.ndarray  # (H, W) float32 in [0, 100]
    ab: np.ndarray  # (H, W, 2)
    lookup: np.ndarray  # (_L_BINS, _TEXTURE_BINS, 2) mean ab per luminance/texture bin
    texture_edges: np.ndarray


class ClassicColorizer(Colorizer):
    """DIS-flow propagation with re-anchoring to the reference and a luminance-lookup fallback."""

    name = "classic"
    size_multiple = 1
    default_short_side = 360

    def __init__(self, device: str = "cpu", *, reference_weight: float = 0.5, match_sigma: float = 6.0,
                 smooth_radius: int = 4) -> None:
        del device  # CPU only, and fast enough there
        self.reference_weight = reference_weight
        self.match_sigma = match_sigma
        self.smooth_radius = smooth_radius
        self._flow = DISFlow()
        self._references: dict[tuple[str, int, int], _ReferenceState] = {}
        self.reset()

    def reset(self) -> None:
        self._previous: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def set_previous(self, ab: np.ndarray) -> None:
        """Adopt a corrected output (from the temporal check) as the state for the next frame."""
        if self._previous is not None:
            lightness, _, confidence = self._previous
            self._previous = (lightness, ab.astype(np.float32), confidence)

    def step(self, lightness: np.ndarray, reference: Reference | None) -> ColorizedFrame:
        height, width = lightness.shape
        if reference is None:
            zeros = np.zeros((height, width, 2), np.float32)
            self._previous = (lightness, zeros, np.zeros((height, width), np.float32))
            return ColorizedFrame(zeros, np.zeros((height, width), np.float32))
        ref = self._reference_state(reference, width, height)

        ab_lookup = self._lookup(ref, lightness)
        ab_ref, conf_ref = self._carry(lightness, ref.lightness, ref.ab, None)
        numerator = ab_lookup * 0.02
        weights = np.full((height, width), 0.02, np.float32)
        numerator += ab_ref * (self.reference_weight * conf_ref)[..., None]
        weights += self.reference_weight * conf_ref
        confidence = conf_ref
        if self._previous is not None:
            prev_l, prev_ab, prev_conf = self._previous
            ab_prev, conf_prev = self._carry(lightness, prev_l, prev_ab, prev_conf)
            numerator += ab_prev * conf_prev[..., None]
            weights += conf_prev
            confidence = np.maximum(confidence, conf_prev)
        ab = numerator / weights[..., None]
        guide = np.ascontiguousarray(lightness / 100.0, dtype=np.float32)
        ab = cv2.ximgproc.guidedFilter(guide, np.ascontiguousarray(ab, dtype=np.float32), self.smooth_radius, 1e-3)
        confidence = confidence.astype(np.float32)
        self._previous = (lightness, ab, confidence)
        return ColorizedFrame(ab.astype(np.float32), confidence)

    # -- colour sources -----------------------------------------------------------------------
    def _carry(self, lightness: np.ndarray, src_l: np.ndarray, src_ab: np.ndarray,
               src_conf: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Warp ``src_ab`` onto the frame by flow; confidence from consistency and photometry."""
        a = lightness / 100.0
        b = src_l / 100.0
        forward = self._flow(a, b)
        backward = self._flow(b, a)
        visible = visible_mask(forward, backward)
        warped_l = warp(src_l, forward)
        warped_ab = warp(src_ab, forward)
        match = np.exp(-((lightness - warped_l) / self.match_sigma) ** 2)
        confidence = match * visible
        if src_conf is not None:
            confidence = confidence * (0.1 + 0.9 * warp(src_conf, forward))
        confidence = cv2.GaussianBlur(confidence.astype(np.float32), (0, 0), 1.0)
        return warped_ab, confidence

    def _reference_state(self, reference: Reference, width: int, height: int) -> _ReferenceState:
        key = (reference.key, width, height)
        state = self._references.get(key)
        if state is None:
            lab = reference.lab_at(width, height)
            lightness = np.ascontiguousarray(reference.lightness_at(width, height))
            ab = np.ascontiguousarray(lab[..., 1:])
            texture = _texture(lightness)
            edges = np.quantile(texture, np.linspace(0, 1, _TEXTURE_BINS + 1)[1:-1]).astype(np.float32)
            lookup = _build_lookup(lightness, texture, edges, ab)
            state = _ReferenceState(lightness, ab, lookup, edges)
            if len(self._references) > 16:
                self._references.clear()
            self._references[key] = state
        return state

    def _lookup(self, ref: _ReferenceState, lightness: np.ndarray) -> np.ndarray:
        l_bin = np.clip((lightness * (_L_BINS / 100.0)).astype(np.int32), 0, _L_BINS - 1)
        t_bin = np.searchsorted(ref.texture_edges, _texture(lightness))
        return ref.lookup[l_bin, t_bin]


def _texture(lightness: np.ndarray) -> np.ndarray:
    """Local standard deviation of lightness in a 5x5 window (Welsh et al.'s neighbourhood stat)."""
    mean = cv2.blur(lightness, (5, 5))
    mean_sq = cv2.blur(lightness * lightness, (5, 5))
    return np.sqrt(np.maximum(mean_sq - mean * mean, 0.0)).astype(np.float32)


def _build_lookup(lightness: np.ndarray, texture: np.ndarray, edges: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Mean reference ab per (lightness, texture) bin; empty bins borrow from the nearest lightness."""
    l_bin = np.clip((lightness * (_L_BINS / 100.0)).astype(np.int32), 0, _L_BINS - 1).ravel()
    t_bin = np.searchsorted(edges, texture).ravel()
    flat = l_bin * _TEXTURE_BINS + t_bin
    counts = np.bincount(flat, minlength=_L_BINS * _TEXTURE_BINS).astype(np.float64)
    table = np.zeros((_L_BINS * _TEXTURE_BINS, 2), np.float64)
    for channel in range(2):
        table[:, channel] = np.bincount(flat, weights=ab[..., channel].ravel(), minlength=_L_BINS * _TEXTURE_BINS)
    counts = counts.reshape(_L_BINS, _TEXTURE_BINS)
    table = table.reshape(_L_BINS, _TEXTURE_BINS, 2)
    # Collapse texture where a bin is empty, then fill empty lightness rows from the nearest row.
    row_counts = counts.sum(axis=1)
    row_means = table.sum(axis=1) / np.maximum(row_counts, 1)[:, None]
    filled_rows = np.flatnonzero(row_counts > 0)
    if filled_rows.size == 0:
        return np.zeros((_L_BINS, _TEXTURE_BINS, 2), np.float32)
    nearest = filled_rows[np.abs(np.arange(_L_BINS)[:, None] - filled_rows[None, :]).argmin(axis=1)]
    row_means = row_means[nearest]
    result = np.where(counts[..., None] >= 4, table / np.maximum(counts, 1)[..., None], row_means[:, None, :])
    return result.astype(np.float32)
