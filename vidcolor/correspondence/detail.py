"""Reference detail: the keyframe's colour finer than the working size, carried onto each output frame.

Colorizers work at a small working size (a short side of 160 to 360 pixels) and their chroma is
upsampled under the guidance of the full-resolution luma (:func:`~vidcolor.color.guided_upsample`).
That snaps colour edges to luma edges but cannot bring back colour detail the working size never
held: the printed calendar, a striped shirt, the thin lines of a painted keyframe. The colourist's
keyframe has that detail at full resolution.

:class:`ReferenceDetail` splits the reference's chroma at the output size into what the working
size can carry (the same area-downscale and guided upsampling every frame gets) and the rest, its
*detail*. For each frame it estimates optical flow from the frame to the reference at the working
size, where it is cheap, scales it up, and adds the reference's detail warped along it wherever
the flow is forward–backward consistent and the warped lightness matches the frame's. Where the
reference does not show the pixel (new content, occlusion, another angle) nothing is added, so the
output there is exactly the plain upsampled chroma. Luminance is untouched, as everywhere.

Measured with ``bench/_inprocess.py --detail`` (7 shared clips, working short side 256, output at
the clips' full size; numbers in the README's quality section).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..color import guided_upsample, rgb_to_gray_lightness, rgb_to_lab
from ..errors import InputError
from .flow import DISFlow, FlowEstimator, forward_backward, warp
from ..references import Reference


@dataclass(frozen=True)
class DetailSettings:
    """Knobs of the detail transfer.

    ``strength`` scales the added detail (0 turns it off, 1 adds it as the reference has it).
    ``lightness_sigma`` (Lab L units) fades the detail out where the reference pixel the flow
    lands on is not as bright as the frame's: a wrong match, a changed light.
    """

    strength: float = 1.0
    lightness_sigma: float = 12.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 2.0:
            raise InputError(f"detail strength must be in [0, 2], got {self.strength}")
        if self.lightness_sigma <= 0.0:
            raise InputError(f"detail lightness_sigma must be positive, got {self.lightness_sigma}")


@dataclass(frozen=True)
class _PreparedReference:
    detail: np.ndarray  # (H_out, W_out, 2) chroma above what the working size carries
    lightness: np.ndarray  # (h, w) gray lightness at the working size, what frames are matched against


class ReferenceDetail:
    """Adds a reference's fine chroma to upsampled frame chroma (see the module docstring).

    Safe to call from several threads: each thread gets its own flow estimator (OpenCV's DIS
    objects are not reentrant); prepared references are shared.
    """

    def __init__(self, settings: DetailSettings = DetailSettings(), flow: FlowEstimator | None = None) -> None:
        self.settings = settings
        self._shared_flow = flow
        self._local = threading.local()
        self._prepared: OrderedDict[tuple[str, str, int, int, int, int], _PreparedReference] = OrderedDict()
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[type[ReferenceDetail], tuple[DetailSettings, FlowEstimator | None]]:
        return ReferenceDetail, (self.settings, self._shared_flow)  # locks and per-thread flow are rebuilt

    def _flow(self) -> FlowEstimator:
        if self._shared_flow is not None:
            return self._shared_flow
        flow = getattr(self._local, "flow", None)
        if flow is None:
            flow = self._local.flow = DISFlow()
        return flow

    def prepare(self, reference: Reference, output_size: tuple[int, int], work: tuple[int, int]) -> _PreparedReference:
        """The reference's detail at ``output_size`` relative to ``work`` (both (width, height)), cached."""
        key = (reference.key, reference.fingerprint, *output_size, *work)
        with self._lock:
            cached = self._prepared.get(key)
            if cached is not None:
                self._prepared.move_to_end(key)
                return cached
        # output-size copies are made here and not cached on the reference: a film with hundreds of
        # shots keeps only the few prepared references below
        rgb = reference.resized(*output_size)
        ab = np.ascontiguousarray(rgb_to_lab(rgb)[..., 1:], dtype=np.float32)
        carried = guided_upsample(cv2.resize(ab, work, interpolation=cv2.INTER_AREA), rgb_to_gray_lightness(rgb))
        prepared = _PreparedReference(detail=ab - carried, lightness=reference.lightness_at(*work))
        with self._lock:
            self._prepared[key] = prepared
            while len(self._prepared) > 4:
                self._prepared.popitem(last=False)
        return prepared

    def add(self, ab: np.ndarray, small_lightness: np.ndarray,
            sources: Sequence[tuple[Reference, float]]) -> np.ndarray:
        """``ab`` (H, W, 2) upsampled chroma plus the detail of each ``(reference, weight)`` source.

        ``small_lightness`` is the frame's Lab L at the working size the chroma was predicted at.
        Weights are the share each reference has in the frame's colour (1 for one keyframe; the
        blend position for a shot between two). Returns a new array; ``ab`` is not modified.
        """
        if ab.ndim != 3 or ab.shape[2] != 2:
            raise InputError(f"detail needs chroma of shape (H, W, 2), got {ab.shape}")
        out = ab.astype(np.float32, copy=True)
        height, width = ab.shape[:2]
        small_h, small_w = small_lightness.shape
        if self.settings.strength == 0.0 or (small_w >= width and small_h >= height):
            return out  # off, or the chroma was predicted at the output size: no finer detail to add
        frame_l = np.ascontiguousarray(small_lightness, dtype=np.float32)
        frame_gray = frame_l * np.float32(0.01)
        for reference, weight in sources:
            if weight <= 0.0:
                continue
            prepared = self.prepare(reference, (width, height), (small_w, small_h))
            pair = forward_backward(self._flow(), frame_gray, prepared.lightness * np.float32(0.01))
            landed_l = warp(prepared.lightness, pair.forward)
            agreement = np.exp(-np.square(landed_l - frame_l) / np.float32(2.0 * self.settings.lightness_sigma ** 2))
            trust = (pair.visible * agreement).astype(np.float32) * np.float32(self.settings.strength * weight)
            # scaled and multiplied while small, and multiplied per plane at the output size:
            # numpy's broadcasting over (H, W, 2) costs more there than the warp itself
            flow_small = pair.forward * np.array([width / small_w, height / small_h], np.float32)
            flow_up = cv2.resize(flow_small, (width, height), interpolation=cv2.INTER_LINEAR)
            trust_up = cv2.resize(trust, (width, height), interpolation=cv2.INTER_LINEAR)
            cv2.add(out, cv2.multiply(warp(prepared.detail, flow_up), cv2.merge([trust_up, trust_up])), dst=out)
        return out
