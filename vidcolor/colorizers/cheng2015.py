"""The ``cheng2015`` model: Deep Colorization (Cheng et al. 2015), fully automatic, per frame.

It ignores the reference: every frame is colorized from its own gray levels by the shipped
regressors (``vidcolor/models/weights/cheng2015.pt``, trained on CPU by
:mod:`vidcolor.training.cheng2015`; ``cheng2015.md`` beside them says on what). Frames are
independent, so the output flickers wherever the prediction is unsure; no-reference mode uses it
on a keyframe and lets an exemplar colorizer carry the colours instead.
"""

from __future__ import annotations

import os
import time

import cv2
import numpy as np

from ..color import guided_upsample
from ..errors import InputError
from ..models.cheng2015 import RefineSettings, load_cheng2015, predict
from ..references import Reference
from .base import ColorizedFrame, Colorizer

#: Short side the descriptors were trained at (patch and DAISY sizes are in pixels).
NATIVE_SHORT_SIDE = 256


class Cheng2015Colorizer(Colorizer):
    """Per-pixel descriptors → cluster-routed regressor → joint bilateral refinement (no reference).

    ``confidence`` is the agreement of the routed cluster regressor with the all-image regressor
    (``exp(-|Δab| / 20)``, edge-aware smoothed): a two-member ensemble disagreement, high where both
    predict the same colour. It is *not* a calibrated probability of being right: both can agree on
    a wrong colour (a plausible brown for a red car).

    :param stride: run the regressors on every ``stride``-th pixel and upsample guided by luma
        (default 2: about 2× faster than 1, and as good on held-out photos).
    :param weights: a weight file to use instead of the shipped one.
    :param vibrancy: extra chroma multiplier on top of the gain stored in the weights (1 = as
        shipped; below 1 trades colour for raw accuracy, see the model card).
    """

    name = "cheng2015"
    needs_reference = False
    size_multiple = 1
    default_short_side = NATIVE_SHORT_SIDE

    def __init__(self, device: str = "cpu", *, stride: int = 2, weights: str | os.PathLike[str] | None = None,
                 refine: bool = True, vibrancy: float = 1.0) -> None:
        del device  # small MLPs: the CPU is the right place
        self.model, self.meta = load_cheng2015(weights)
        self.stride = int(stride)
        if not 0.0 <= vibrancy <= 3.0:
            raise InputError(f"cheng2015: vibrancy must be between 0 and 3, got {vibrancy}")
        self.vibrancy = float(vibrancy)
        self.refine = RefineSettings() if refine else None
        self._weights = None if weights is None else os.fspath(weights)

    def reset(self) -> None:
        """Nothing to forget: frames are colorized independently."""

    def step(self, lightness: np.ndarray, reference: Reference | None) -> ColorizedFrame:
        del reference  # fully automatic
        started = time.perf_counter()
        frame = np.asarray(lightness, dtype=np.float32)
        height, width = frame.shape
        scale = NATIVE_SHORT_SIDE / min(height, width)
        work = frame
        if scale < 0.8:  # descriptors are pixel-sized: work near the trained scale, upsample after
            size = (max(8, round(width * scale)), max(8, round(height * scale)))
            work = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        result = predict(self.model, work, stride=self.stride, refine=self.refine)
        ab, confidence = result.ab * self.vibrancy, result.confidence
        if work is not frame:
            ab = guided_upsample(ab, frame)
            confidence = cv2.resize(confidence, (width, height), interpolation=cv2.INTER_LINEAR)
        stats = {"cluster": float(result.cluster), "confidence": float(confidence.mean()),
                 "seconds": time.perf_counter() - started}
        return ColorizedFrame(np.ascontiguousarray(ab, dtype=np.float32),
                              np.clip(confidence, 0.0, 1.0).astype(np.float32), stats)

    def describe(self) -> dict[str, object]:
        return {"model": self.name, "stride": self.stride, "refine": self.refine is not None,
                "vibrancy": self.vibrancy, "weights": self._weights or "shipped"}
