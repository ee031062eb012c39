"""Optical-flow temporal checking while colorizing, around any colorizer.

Deep Exemplar (Zhang et al. 2019) uses flow only in its training loss and evaluation, and feeds the
previous output unwarped at test time. :class:`TemporalCheck` adds the check at inference: each
frame, the previous *output* chroma is warped onto the current frame by optical flow computed on
the working-resolution lightness. Where that warp is trustworthy (forward–backward consistent and
the warped lightness matches) and disagrees with the new prediction, the prediction is pulled
toward the warped colours unless the colorizer is clearly more confident; where the previous frame
does not see the pixel (occlusion, new content) the colorizer is trusted as is. A recurrent
colorizer is then told the corrected colours (:meth:`Colorizer.set_previous`), so flicker is not
fed back into the next frame.

Each frame's ``stats`` gain ``warp_error`` (Lai et al.'s error between this output and the warped
previous output, RGB in [0, 1], visible pixels), ``occluded`` (fraction of pixels with no
trustworthy counterpart in the previous frame), ``confidence`` (mean output confidence),
``corrected`` (mean chroma change applied, Lab units) and ``flagged`` (1.0 when the check had to
change a large part of the frame, a likely flicker or a scene change the schedule missed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import cv2
import numpy as np

from .color import lab_to_rgb
from .colorizers.base import ColorizedFrame, Colorizer
from .correspondence.flow import DISFlow, FlowEstimator, FlowPair, flow_pool, forward_backward, make_flow, warp
from .references import Reference


@dataclass(frozen=True)
class TemporalSettings:
    """Knobs of the temporal check.

    Defaults were tuned around the ``classic`` colorizer so that no shared clip lost PSNR
    (measurements: the default model card, "Inference constants").


    :param strength: weight of the warped previous output against an equally confident new
        prediction (0 disables the correction but keeps the measurements).
    :param match_sigma: Lab L difference at which a warped pixel's lightness mismatch makes its
        colour untrustworthy (flow error the forward–backward test missed).
    :param confidence_margin: how much more confident than the warped previous the colorizer
        must be before the check stops pulling toward the previous colours.
    :param persistence: how much of the previous output's confidence survives one frame. Carried
        colours fade anyway (the carried confidence is scaled by the blend weight, below 1), so
        the colorizer re-anchors after a drift; lower values fade them faster. None (the default)
        takes the colorizer's own :attr:`~vidcolor.colorizers.base.Colorizer.temporal_persistence`:
        1.0 for most, 0.8 for the recurrent ``default`` network, which already carries its previous
        output (measurements: the default model card, "Inference constants").
    :param flag_delta: chroma change (Lab units) counted as a heavy correction of a pixel.
    :param flag_fraction: fraction of heavily corrected pixels above which a frame is flagged.
    """

    strength: float = 1.0
    match_sigma: float = 12.0
    confidence_margin: float = 0.5
    persistence: float | None = None
    flag_delta: float = 10.0
    flag_fraction: float = 0.2


class TemporalCheck(Colorizer):
    """Wraps a colorizer: same ``reset``/``step`` interface, temporally checked output."""

    def __init__(self, inner: Colorizer, flow: FlowEstimator | None = None,
                 settings: TemporalSettings | None = None) -> None:
        self.inner = inner
        self.flow = flow if flow is not None else make_flow("auto")
        # A preview model may ask for a cheaper DIS preset: its own error exceeds what the finer flow buys.
        preset = getattr(inner, "temporal_dis_preset", None)
        if preset is not None and isinstance(self.flow, DISFlow) and self.flow.preset != preset:
            self.flow = DISFlow(preset)
        settings = settings or TemporalSettings()
        if settings.persistence is None:
            settings = dataclasses.replace(settings, persistence=inner.temporal_persistence)
        self.settings = settings
        self.name = inner.name
        self.needs_reference = inner.needs_reference
        self.size_multiple = inner.size_multiple
        self.default_short_side = inner.default_short_side
        self._previous: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def describe(self) -> dict[str, object]:
        described = {**self.inner.describe(), "temporal": dataclasses.asdict(self.settings), "flow": self.flow.name}
        if getattr(self.inner, "temporal_dis_preset", None) is not None and isinstance(self.flow, DISFlow):
            described["dis_preset"] = self.flow.preset  # only where a model asks: others' signatures stay as they were
        return described

    def reset(self) -> None:
        self.inner.reset()
        self._previous = None

    def begin_reference(self, reference: Reference, size: tuple[int, int],
                        anchor: Callable[[], np.ndarray | None]) -> None:
        self.inner.begin_reference(reference, size, anchor)

    def set_previous(self, ab: np.ndarray) -> None:
        """Pass a correction made further out down to the inner colorizer, and remember it."""
        self.inner.set_previous(ab)
        if self._previous is not None:
            lightness, _, confidence = self._previous
            self._previous = (lightness, ab.astype(np.float32), confidence)

    def step(self, lightness: np.ndarray, reference: Reference | None) -> ColorizedFrame:
        motion: Future[FlowPair] | None = None
        if self._previous is not None and self._previous[0].shape == lightness.shape:
            # the flow needs only the two inputs: estimate it while the inner colorizer predicts
            motion = flow_pool().submit(forward_backward, self.flow, lightness / 100.0, self._previous[0] / 100.0)
        predicted = self.inner.step(lightness, reference)
        ab = predicted.ab.astype(np.float32)
        confidence = np.clip(predicted.confidence.astype(np.float32), 0.0, 1.0)
        stats = dict(predicted.stats)
        if motion is None or self._previous is None:
            self._previous = (lightness, ab, confidence)
            stats.update(warp_error=0.0, occluded=0.0, confidence=float(confidence.mean()), corrected=0.0, flagged=0.0)
            return ColorizedFrame(ab, confidence, stats)

        s = self.settings
        prev_l, prev_ab, prev_conf = self._previous
        pair = motion.result()
        warped_l = warp(prev_l, pair.forward)
        warped_ab = warp(prev_ab, pair.forward)
        warped_conf = warp(prev_conf, pair.forward)
        # Trust in the warped previous colour: visible, photometrically consistent, and confident.
        match = np.exp(-(((lightness - warped_l) / s.match_sigma) ** 2))
        trust = pair.visible * match
        trust = cv2.GaussianBlur(trust.astype(np.float32), (0, 0), 1.0)
        carried = s.persistence * warped_conf
        # Pull toward the warped previous unless the colorizer is clearly more confident.
        advantage = np.clip((confidence - carried) / max(s.confidence_margin, 1e-6), 0.0, 1.0)
        alpha = np.clip(s.strength * trust * (1.0 - advantage) * (0.5 + 0.5 * carried), 0.0, 1.0).astype(np.float32)
        corrected = ab + alpha[..., None] * (warped_ab - ab)
        out_conf = np.maximum(confidence, alpha * carried).astype(np.float32)

        change = np.hypot(corrected[..., 0] - ab[..., 0], corrected[..., 1] - ab[..., 1])
        heavy = float((change > s.flag_delta).mean())
        visible = pair.visible & (match > 0.5)
        stats.update(
            warp_error=_warp_error(lightness, corrected, warped_l, warped_ab, visible),
            occluded=float(1.0 - visible.mean()),
            confidence=float(out_conf.mean()),
            corrected=float(change.mean()),
            flagged=1.0 if heavy > s.flag_fraction else 0.0,
        )
        if s.strength > 0.0:
            self.inner.set_previous(corrected)
        self._previous = (lightness, corrected, out_conf)
        return ColorizedFrame(corrected, out_conf, stats)


def _warp_error(lightness: np.ndarray, ab: np.ndarray, warped_l: np.ndarray, warped_ab: np.ndarray,
                visible: np.ndarray) -> float:
    """Masked mean squared RGB difference between this output and the previous output warped here."""
    if not visible.any():
        return 0.0
    current = lab_to_rgb(np.dstack([lightness, ab]))
    previous = lab_to_rgb(np.dstack([warped_l, warped_ab]))
    diff = current - previous
    squared = diff[..., 0] ** 2 + diff[..., 1] ** 2 + diff[..., 2] ** 2  # per pixel; no strided reduction
    return float(squared[visible].sum(dtype=np.float64) / (3 * np.count_nonzero(visible)))
